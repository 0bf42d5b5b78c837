"""The HTML report: golden files, feedback rules, self-containment, and a real browser."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from grader.errors import ResultsError
from grader.feedback import feedback
from grader.html_report import render_report, write_report
from grader.results import Finding, TaskResult, load_results

DATA = Path(__file__).parent / "data"
GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("GRADER_UPDATE_GOLDENS") == "1"


def normalise(html: str) -> str:
    """Plots and thumbnails depend on matplotlib's and zlib's versions: compare the rest."""
    html = re.sub(r"<svg.*?</svg>", "<svg/>", html, flags=re.S)
    return re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "data:image/png;base64,...", html)


@pytest.mark.parametrize("name", ["results_good.json", "results_errors.json"])
def test_report_matches_golden(name):
    """Refresh with GRADER_UPDATE_GOLDENS=1 python -m pytest tests/test_report.py"""
    html = normalise(render_report(load_results(DATA / name)))
    golden = GOLDEN / name.replace(".json", ".html")
    if UPDATE or not golden.exists():
        golden.write_text(html)
        if not UPDATE:
            pytest.fail(f"wrote missing golden file {golden}; re-run")
    assert html == golden.read_text()


def test_report_shows_every_item():
    r = load_results(DATA / "results_good.json")
    html = render_report(r)
    assert "10 / 10" in html and "5 of 5 tasks passed" in html
    assert r.environment["device"]["name"] in html and "rubric cifar10-keras-lab 1.0.0" in html
    for t in r.tasks:
        assert f'id="{t.id}"' in html
    # lab order: Q2, Q4, Q5, Q6, Q8, Q10
    positions = [html.index(f'id="{i}"') for i in ("fc", "cnn", "cnn_vs_fc", "cnn_dropout",
                                                    "cnn_batchnorm", "final")]
    assert positions == sorted(positions)
    assert html.count("<svg") >= 7  # curves per task, comparison bars and curves
    assert "Confusion matrix on the test set" in html and "airplane" in html
    assert "Its most confident mistakes" in html and "data:image/png;base64," in html
    assert "Compared with Q4 (cnn)" in html  # Q7 and Q8 panels
    assert "Gap between training and validation accuracy" in html


def test_a_quick_report_draws_no_accuracy_plots():
    """One epoch on a subset is no result: no curves (one point each) and no comparison
    figures, which would read as a judgement a quick check does not make."""
    r = load_results(DATA / "results_good.json")
    for t in r.tasks:
        t.history = {k: v[:1] for k, v in t.history.items()}
    html = render_report(r)
    assert "Accuracy (left) and loss (right)" not in html
    assert "Compared with Q4 (cnn)" not in html
    r = load_results(DATA / "results_good.json")
    assert "Compared with Q4 (cnn)" in render_report(r)
    r.mode = "quick"
    html = render_report(r)
    assert "Compared with Q4 (cnn)" not in html
    assert html.count("Accuracy (left) and loss (right)") == len(r.tasks)


def test_report_of_a_crash_shows_the_students_line_not_ours():
    html = render_report(load_results(DATA / "results_errors.json"))
    assert "ZeroDivisionError: integer division or modulo by zero" in html
    assert "line 9, in build_fc_model: units = 512 // 0" in html
    assert "grader/child/worker.py" not in html and "grader/worker.py" not in html and "site-packages" not in html


def test_report_is_self_contained():
    html = render_report(load_results(DATA / "results_good.json"))
    assert not re.search(r"https?://|//[a-z0-9.-]+\.[a-z]{2,}/", html), "an external URL"
    assert "<script" not in html and "<link" not in html
    assert "default-src 'none'" in html


def _task(**kw) -> TaskResult:
    base = dict(id="cnn", question="Q4", title="CNN", function="build_cnn_model",
                status="passed", reason="", batch_size=32, epochs_run=10)
    return TaskResult(**{**base, **kw})


def _rules(t, max_epochs=20):
    return {fb.rule: fb.message for fb in feedback(t, max_epochs)}


def test_feedback_overfitting_and_not():
    hist = {"accuracy": [0.6, 0.9, 0.97], "val_accuracy": [0.55, 0.66, 0.68], "loss": [1, .5, .1]}
    assert "Dropout" in _rules(_task(history=hist))["overfitting"]
    close = {"accuracy": [0.6, 0.7], "val_accuracy": [0.6, 0.68], "loss": [1, .8]}
    assert "overfitting" not in _rules(_task(history=close))


def test_feedback_underfitting():
    hist = {"accuracy": [0.2, 0.3], "val_accuracy": [0.2, 0.3], "loss": [2.2, 2.0]}
    assert "capacity" in _rules(_task(history=hist))["underfitting"]


def test_feedback_nan_and_diverging_loss():
    nan = _task(history={"loss": [2.3, None]},
                findings=[Finding("nan_loss", False, "NaN at epoch 2")])
    assert "learning rate" in _rules(nan)["diverging"]
    rising = _task(history={"loss": [1.0, 1.5, 3.0], "accuracy": [.6, .6, .6]})
    assert "rose from 1.000 to 3.000" in _rules(rising)["diverging"]


def test_feedback_still_rising_depends_on_the_budget():
    hist = {"accuracy": [.5, .6, .7], "val_accuracy": [0.50, 0.55, 0.60], "loss": [1, .9, .8]}
    assert "the budget allows 17 more epoch(s)" in _rules(_task(history=hist))["still_rising"]
    assert "budget is used up" in _rules(_task(history=hist), max_epochs=3)["still_rising"]
    flat = {"accuracy": [.5, .6, .7], "val_accuracy": [0.50, 0.60, 0.60], "loss": [1, .9, .8]}
    assert "still_rising" not in _rules(_task(history=flat))


def test_feedback_small_batch_with_batchnorm():
    desc = {"layers": [{"class_name": "Conv2D"}, {"class_name": "BatchNormalization"}]}
    text = _rules(_task(batch_size=4, description=desc))["small_batch_batchnorm"]
    assert "minibatch" in text and "Q9" not in text  # no question number the rubric lacks
    assert "small_batch_batchnorm" not in _rules(_task(batch_size=64, description=desc))
    assert "small_batch_batchnorm" not in _rules(_task(batch_size=4, description={"layers": []}))


def test_feedback_output_without_softmax_or_logits():
    t = _task(findings=[Finding("output_activation", False, "Expected a softmax output.")])
    assert "from_logits=True" in _rules(t)["output_and_loss"]


def test_report_command_rerenders(tmp_path):
    from click.testing import CliRunner
    from grader.cli import main
    shutil.copy(DATA / "results_good.json", tmp_path / "results.json")
    r = CliRunner().invoke(main, ["report", str(tmp_path / "results.json")])
    assert r.exit_code == 0 and (tmp_path / "report.html").is_file()
    bad = CliRunner().invoke(main, ["report", str(tmp_path / "missing.json")])
    assert bad.exit_code == 2 and "Results file not found" in bad.output


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (.ci/run installs it)")
def test_report_in_headless_chromium(tmp_path):
    page = write_report(DATA / "results_good.json", tmp_path / "report.html")
    shot = tmp_path / "shot.png"
    proc = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}", "--enable-logging=stderr",
         "--v=0", "--window-size=1000,3000", f"--screenshot={shot}", page.as_uri()],
        capture_output=True, text=True, timeout=120)
    console = [l for l in proc.stderr.splitlines() if ":CONSOLE" in l]
    assert console == [], console  # no errors, and no request blocked by the page's CSP
    assert shot.is_file() and shot.stat().st_size > 50_000  # a rendered page, not a blank one


def test_reference_aggregate_and_comparison(tmp_path):
    """Runs that split the tasks between them aggregate into one file; a results file on
    other data is not compared but says why."""
    from grader.reference import aggregate, comparison
    r = load_results(DATA / "results_good.json")
    a = load_results(DATA / "results_good.json")
    a.tasks = [t for t in a.tasks if t.id == "fc"]
    b = load_results(DATA / "results_good.json")
    b.tasks = [t for t in b.tasks if t.id != "fc"]
    b.seed = 1
    b.submission["sha256"] = "f" * 64  # another version of the file: fc unchanged in it
    ref = aggregate([a, b], "grader reference --from a --from b")
    assert set(ref["tasks"]) == {t.id for t in r.tasks} and ref["seeds"] == [0, 1]
    assert ref["tasks"]["fc"]["test_accuracy_mean"] == r.task("fc").test_accuracy
    same = comparison(r, ref)
    assert same["fc"]["comparable"] and same["fc"]["accuracy_diff_points"] == 0
    assert same["fc"]["val_accuracy"] == r.task("fc").history["val_accuracy"]
    del ref["tasks"]["fc"]
    assert comparison(r, ref)["fc"] == {
        "comparable": False, "why": "the reference file has no measured runs of this task"}
    ref = aggregate([a, b], "grader reference --from a --from b")
    # Another copy of the same dataset (the official archive vs this JPEG re-encoding):
    # compared, with a caveat.  A subset of it is other data: not compared.
    copy = load_results(DATA / "results_good.json")
    copy.data["fingerprint"] = "0" * 16
    caveat = comparison(copy, ref)["fc"]
    assert caveat["comparable"] and "another copy of this dataset" in caveat["caveat"]
    assert "fingerprint 0000000000000000" not in same["fc"].get("caveat", "")
    other = load_results(DATA / "results_good.json")
    other.data["n_train"] = 5000
    why = comparison(other, ref)["fc"]
    assert not why["comparable"] and "measured on other data" in why["why"]
    assert "5000 training" in why["why"]
    changed = load_results(DATA / "results_good.json")
    changed.seed = 2
    changed.submission["path"] = "edited/lab.py"
    layer = changed.task("fc").description["layers"][1]
    layer["config"]["units"] = layer["config"]["units"] * 2
    with pytest.raises(ResultsError, match="task 'fc' trained different models.*edited/lab.py"):
        aggregate([r, changed], "grader reference --from r --from changed")
    jax = load_results(DATA / "results_good.json")
    jax.environment["device"]["backend"] = "jax"
    why = comparison(jax, ref)["fc"]
    assert not why["comparable"] and "trained on the tensorflow backend" in why["why"]


def test_a_reference_file_keeps_the_tasks_the_new_runs_do_not_measure(tmp_path):
    """Re-measuring some models (another machine, a changed model) carries the others over
    whole from the existing file; a re-measured task is replaced, never mixed."""
    from click.testing import CliRunner
    from grader.cli import main
    from grader.reference import aggregate, markdown_table
    old = aggregate([load_results(DATA / "results_good.json")], "grader reference (old)")
    new = load_results(DATA / "results_good.json")
    new.tasks = [t for t in new.tasks if t.id == "fc"]
    new.seed = 5
    new.task("fc").test_accuracy = 0.25
    new.environment["device"]["cpu_isa"] = "family 25 model 17: avx2 fma"
    ref = aggregate([new], "grader reference (new)", order=("fc", "cnn"), keep=old)
    assert list(ref["tasks"]) == list(old["tasks"])  # the rubric's order, fc first
    fc = ref["tasks"]["fc"]
    assert [r["seed"] for r in fc["runs"]] == [5] and fc["test_accuracy_mean"] == 0.25
    assert fc["runs"][0]["cpu_isa"] == "family 25 model 17: avx2 fma" and "kept_from" not in fc
    others = [tid for tid in old["tasks"] if tid != "fc"]
    assert others and all(ref["tasks"][tid]["runs"] == old["tasks"][tid]["runs"] and
                          ref["tasks"][tid]["kept_from"]["command"] == "grader reference (old)"
                          for tid in others)
    assert "(family 25 model 17: avx2 fma)" in markdown_table(ref).splitlines()[2]
    other_data = dict(old, data=dict(old["data"], fingerprint="0" * 16))
    with pytest.raises(ResultsError, match="differs from the runs in its data fingerprint"):
        aggregate([new], "x", keep=other_data)
    # The command line: --keep with --from.
    (tmp_path / "old.json").write_text(json.dumps(old))
    shutil.copy(DATA / "results_good.json", tmp_path / "results.json")
    r = CliRunner().invoke(main, ["reference", "--from", str(tmp_path / "results.json"),
                                  "--keep", str(tmp_path / "old.json"),
                                  "--out", str(tmp_path / "ref.json")])
    assert r.exit_code == 0, r.output
    assert set(json.loads((tmp_path / "ref.json").read_text())["tasks"]) == set(old["tasks"])
    bad = CliRunner().invoke(main, ["reference", "--from", str(tmp_path / "results.json"),
                                    "--keep", str(tmp_path / "results.json"),
                                    "--out", str(tmp_path / "not-written.json")])
    assert bad.exit_code == 2 and "is not a reference file" in " ".join(bad.output.split())


def test_the_reference_table_in_the_docs_is_the_packaged_file():
    from grader.reference import load_reference, markdown_table
    root = Path(__file__).resolve().parent.parent
    ref = load_reference(root / "reference" / "results" / "cifar10.json")
    doc = (root / "docs" / "reference.md").read_text()
    table = doc.split("<!-- reference-table -->\n")[1].split("\n<!-- /reference-table -->")[0]
    assert table == markdown_table(ref), "docs/reference.md's table is grader.reference." \
        "markdown_table of the file: `grader reference` prints it"
