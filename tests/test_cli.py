"""The CLI: exit codes, one-line errors with a hint, and the summary."""
from __future__ import annotations

import json

from click.testing import CliRunner

from grader.cli import main


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_missing_submission_is_a_usage_error(tmp_path):
    r = invoke("check", tmp_path / "lab.py", "--data", tmp_path)
    assert r.exit_code == 2
    assert "error: Submission not found" in r.output
    assert "Traceback" not in r.output


def test_other_file_types_are_refused_with_a_hint(tmp_path):
    doc = tmp_path / "lab.docx"
    doc.write_text("{}")
    r = invoke("check", doc)
    assert r.exit_code == 2 and "Expected a Python file (.py) or a notebook (.ipynb)" in r.output


def test_unknown_task_suggests_the_right_one(submission, synthetic_npz):
    r = invoke("check", submission("good.py"), "--data", synthetic_npz, "--tasks", "fc,cnnn")
    assert r.exit_code == 2
    assert "Unknown task 'cnnn'" in r.output and "Did you mean 'cnn'?" in r.output


def test_bad_rubric_is_a_usage_error(submission, synthetic_npz, tmp_path):
    rubric = tmp_path / "r.toml"
    rubric.write_text("schema = 1\nidd = 'x'\n")
    r = invoke("check", submission("good.py"), "--data", synthetic_npz, "--rubric", rubric)
    assert r.exit_code == 2 and "unknown key 'idd'" in r.output and "Did you mean 'id'?" in r.output


def test_no_data_is_a_usage_error(submission, tmp_path):
    r = invoke("check", submission("good.py"), "--data", tmp_path / "nope.npz")
    assert r.exit_code == 2 and "Data path does not exist" in r.output and "hint:" in r.output


def test_passing_and_failing_submissions_exit_0_and_1(submission, synthetic_npz, tmp_path):
    ok = invoke("check", submission("good.py"), "--data", synthetic_npz, "--tasks", "fc",
                "--out", tmp_path / "ok")
    assert ok.exit_code == 0, ok.output
    assert "2 / 2 points" in ok.output
    saved = json.loads((tmp_path / "ok" / "results.json").read_text())
    assert saved["tasks"][0]["status"] == "passed"
    bad = invoke("check", submission("fc_with_conv.py"), "--data", synthetic_npz, "--tasks", "fc")
    assert bad.exit_code == 1
    assert "may not use Conv2D" in bad.output


def test_version():
    r = invoke("--version")
    assert r.exit_code == 0 and "grader, version" in r.output


def test_every_command_maps_user_errors_to_exit_2_without_a_traceback(tmp_path):
    for args in (["report", tmp_path / "missing.json"],
                 ["grade", tmp_path / "nobody", "--out", tmp_path / "o"],
                 ["init", tmp_path / "lab.txt"],
                 ["reference", "--from", tmp_path / "x.json"],
                 ["gradescope-bundle", "-o", tmp_path / "bundle.tar"]):
        if args[0] == "reference":
            (tmp_path / "x.json").write_text("{}")
        r = invoke(*args)
        assert r.exit_code == 2, (args, r.output)
        assert "error:" in r.output and "Traceback" not in r.output, (args, r.output)


def test_a_grader_bug_is_exit_3_with_the_traceback_saved(tmp_path, monkeypatch):
    import grader.html_report

    def broken(*a, **k):
        raise RuntimeError("template exploded")

    monkeypatch.setattr(grader.html_report, "write_report", broken)
    results = tmp_path / "results.json"
    results.write_text((__import__("conftest").REPO / "tests" / "data" /
                        "results_good.json").read_text())
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    r = invoke("report", results)
    assert r.exit_code == 3, r.output
    assert "internal error: RuntimeError: template exploded" in r.output
    assert "Traceback" not in r.output
    saved = list(tmp_path.glob("grader-crash-*.txt"))
    assert len(saved) == 1 and "template exploded" in saved[0].read_text()
    assert str(saved[0]) in r.output.replace("\n", "")


def test_format_without_out_is_refused_before_any_work(submission, tmp_path):
    # The data path does not exist: had any work started, that would be the error.
    r = invoke("check", submission("good.py"), "--data", tmp_path / "none.npz",
               "--format", "gradescope")
    assert r.exit_code == 2 and "--format gradescope writes files: it needs --out DIR" in r.output


def test_quick_check_says_it_is_not_a_grade(submission, synthetic_npz):
    r = invoke("check", submission("good.py"), "--data", synthetic_npz, "--tasks", "fc",
               "--quick")
    assert r.exit_code == 0, r.output
    assert "QUICK CHECK, NOT A GRADE" in r.output and "not graded" in r.output
    assert "2/2" not in r.output and "checked" in r.output


def test_student_text_in_the_summary_is_printed_as_written_not_as_markup():
    """An error message or a file name with brackets ("[3]", "[/red]") is the student's
    text: printed as it is, never read as rich markup (which would drop it or crash)."""
    import io

    from rich.console import Console

    from grader.console import print_summary
    from grader.results import ERROR, Finding, Results, TaskResult

    t = TaskResult("fc", "Q2", "FC", "build_fc_model", status=ERROR,
                   reason="IndexError: list index [3] out of range [/red]",
                   findings=[Finding("builder", False, "layers[0] is [bold]odd[/]")])
    r = Results(submission={"name": "[LATE] lab.py"}, rubric={}, mode="full", seed=0,
                started_at="now", tasks=[t],
                notes=[Finding("device", False, "pip install 'keras-lab-grader[tensorflow-gpu]'")])
    buf = io.StringIO()
    print_summary(r, Console(file=buf, width=200))
    text = buf.getvalue()
    for s in ("list index [3] out of range [/red]", "layers[0] is [bold]odd[/]",
              "[LATE] lab.py", "keras-lab-grader[tensorflow-gpu]"):
        assert s in text, s


def test_sigterm_stops_a_run_like_ctrl_c_and_leaves_no_temporary_folder(submission,
                                                                        synthetic_npz,
                                                                        tmp_path):
    """A scheduler's or `kill`'s SIGTERM unwinds the run: exit 130, and the run's temporary
    folder (which holds its copy of the data) is removed, not left in $TMPDIR."""
    import os
    import signal
    import subprocess
    import sys
    import time

    tmp = tmp_path / "tmp"
    tmp.mkdir()
    proc = subprocess.Popen(
        [sys.executable, "-m", "grader.cli", "check", str(submission("hangs_in_builder.py")),
         "--data", str(synthetic_npz), "--tasks", "fc", "--out", str(tmp_path / "out")],
        env={**os.environ, "TMPDIR": str(tmp)}, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if any((d / "builder-1").exists() for d in tmp.glob("grader-*")):
            break  # the run is under way: its folder and its builder exist
        time.sleep(0.2)
    assert proc.poll() is None, proc.communicate()
    time.sleep(1)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted" in err
    assert not list(tmp.glob("grader-*")), list(tmp.iterdir())
