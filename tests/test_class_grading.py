"""Grading a class: layouts, never aborting, resuming after kill -9, and the output formats."""
from __future__ import annotations

import csv
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

import jsonschema
import xmlschema

from grader.batch import discover, grade_batch
from grader.formats import gradescope, junit
from grader.results import load_results

from conftest import SUBMISSIONS

JUNIT_SCHEMA = xmlschema.XMLSchema(str(Path(__file__).parent / "data" / "junit.xsd"))

# Gradescope's documented autograder output (tests[] fields, execution_time, leaderboard).
GRADESCOPE_SCHEMA = {
    "type": "object", "required": ["tests"],
    "properties": {
        "score": {"type": "number"}, "execution_time": {"type": "number"},
        "output": {"type": "string"},
        "tests": {"type": "array", "items": {
            "type": "object", "required": ["name", "status"], "additionalProperties": False,
            "properties": {"score": {"type": "number"}, "max_score": {"type": "number"},
                           "status": {"enum": ["passed", "failed"]}, "name": {"type": "string"},
                           "number": {"type": "string"}, "output": {"type": "string"},
                           "visibility": {"enum": ["hidden", "after_due_date",
                                                   "after_published", "visible"]}}}},
        "leaderboard": {"type": "array", "items": {
            "type": "object", "required": ["name", "value"],
            "properties": {"name": {"type": "string"}, "value": {"type": ["number", "string"]},
                           "order": {"enum": ["asc", "desc"]}}}}},
    "additionalProperties": False}


def _class(root: Path) -> Path:
    """good, failing, crashing, hanging and duplicate submissions in the layouts we support."""
    (root / "alice").mkdir(parents=True)
    shutil.copy(SUBMISSIONS / "good.py", root / "alice" / "lab.py")
    (root / "bob").mkdir()
    shutil.copy(SUBMISSIONS / "fc_with_conv.py", root / "bob" / "lab.py")
    (root / "carol_12345_assignsubmission_file_").mkdir()   # Moodle
    shutil.copy(SUBMISSIONS / "exits_in_builder.py",
                root / "carol_12345_assignsubmission_file_" / "lab.py")
    shutil.copy(SUBMISSIONS / "hangs_in_builder.py", root / "dave_1234_5678_lab.py")  # Canvas
    shutil.copy(SUBMISSIONS / "syntax_error.py", root / "erin.py")
    shutil.copy(SUBMISSIONS / "good.py", root / "alice.py")  # the same student again
    return root


def test_discover_layouts_and_ids(tmp_path):
    entries, notes = discover([_class(tmp_path / "class")])
    ids = sorted(e.student for e in entries)
    assert ids == ["alice", "alice-2", "bob", "carol", "dave", "erin"]
    assert any("alice: more than one submission" in n for n in notes)


def test_batch_never_aborts_and_resumes_without_regrading(synthetic_npz, tmp_path,
                                                          shared_trainers):
    root = _class(tmp_path / "class")
    out = tmp_path / "out"
    rows = grade_batch([root], out, data=synthetic_npz, quick=True, tasks="fc", jobs=2,
                       task_timeout_s=7, formats=("gradescope", "junit"), **shared_trainers)
    by = {r.student: r for r in rows}
    assert len(rows) == 6 and all(r.status == "graded" for r in rows)
    assert by["alice"].passed and by["alice-2"].passed
    assert not by["bob"].passed and by["bob"].problem is None  # the model's fault
    assert by["carol"].problem == "crashed"
    assert by["dave"].problem == "timed out"
    assert by["erin"].problem == "could not be imported"
    with open(out / "grades.csv") as f:
        table = list(csv.DictReader(f))
    assert [r["student"] for r in table] == [r.student for r in rows]
    assert (out / "index.html").is_file() and (out / by["alice"].folder / "report.html").is_file()
    # A quick batch is a pre-check: no points anywhere, and every output says so
    assert all(r["mode"] == "quick" and r["points"] == "" and r["max_points"] == ""
               for r in table)
    assert {r["student"]: r["status"] for r in table}["alice"] == "checked"
    index = (out / "index.html").read_text()
    assert "Quick check only: not a grade." in index
    # the pass rates of a quick batch are counts (it has no accuracies to draw), never empty
    fc_row = re.search(r"<tr><td>Q2 fc</td>(.*?)</tr>", index).group(1)
    assert re.findall(r">(\d+)<", fc_row) == ["3", "2", "1", "3", "0", "6"], fc_row
    # Gradescope and JUnit outputs validate
    for r in rows:
        g = json.loads((out / r.folder / "gradescope.json").read_text())
        jsonschema.validate(g, GRADESCOPE_SCHEMA)
        assert g["score"] == 0 and all("score" not in t for t in g["tests"])
        assert g["output"].startswith("QUICK CHECK ONLY, NOT A GRADE")
    JUNIT_SCHEMA.validate(str(out / "junit.xml"))
    suites = ET.parse(out / "junit.xml").getroot()
    assert suites.tag == "testsuites" and len(suites) == 6
    for suite in suites:
        assert int(suite.get("tests")) == len(suite.findall("testcase"))
        assert int(suite.get("failures")) == len(suite.findall("testcase/failure"))
        assert int(suite.get("errors")) == len(suite.findall("testcase/error"))
    # a second run grades again, once, only what ended in a way that may be the machine's
    # (a crash, a time limit); a third grades nothing and changes nothing
    again = {r.student: r for r in grade_batch([root], out, data=synthetic_npz, quick=True,
                                                 tasks="fc", jobs=2, task_timeout_s=7,
                                                 **shared_trainers)}
    assert {s for s, r in again.items() if not r.cached} == {"carol", "dave"}
    assert again["carol"].problem == "crashed" and again["dave"].problem == "timed out"
    before = {r.student: (out / r.folder / "results.json").read_text() for r in rows}
    third = grade_batch([root], out, data=synthetic_npz, quick=True, tasks="fc", jobs=2,
                        task_timeout_s=7, **shared_trainers)
    assert all(r.cached for r in third)
    assert before == {r.student: (out / r.folder / "results.json").read_text() for r in rows}
    # a changed submission is regraded
    shutil.copy(SUBMISSIONS / "good.py", root / "bob" / "lab.py")
    third = {r.student: r for r in grade_batch([root], out, data=synthetic_npz, quick=True,
                                                 tasks="fc", jobs=2, task_timeout_s=7,
                                                 **shared_trainers)}
    assert not third["bob"].cached and third["bob"].passed and third["alice"].cached


def test_kill_midway_then_rerun_grades_each_exactly_once(synthetic_npz, tmp_path):
    root = tmp_path / "class"
    root.mkdir()
    for name in ("ann", "ben", "cat", "dan"):
        shutil.copy(SUBMISSIONS / "good.py", root / f"{name}.py")
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "grader.cli", "grade", str(root), "--out", str(out),
           "--data", str(synthetic_npz), "--quick", "--tasks", "fc", "--jobs", "1"]
    proc = subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:  # wait until at least one submission is finished
        done = [p for p in out.glob("*/results.json") if load_results(p).finished_at]
        if done:
            break
        time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    finished_before = {p.parent.name: p.read_text() for p in out.glob("*/results.json")
                       if load_results(p).finished_at}
    assert 1 <= len(finished_before) < 4
    time.sleep(1)  # the killed grader's children die with it (PR_SET_PDEATHSIG)
    rerun = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr
    assert f"{len(finished_before)} already graded" in rerun.stderr
    for name, text in finished_before.items():  # untouched: graded exactly once
        assert (out / name / "results.json").read_text() == text
    rows = list(csv.DictReader(open(out / "grades.csv")))
    assert sorted(r["student"] for r in rows) == ["ann", "ben", "cat", "dan"]
    assert all(r["status"] == "checked" for r in rows)


def test_gradescope_bundle_runs_like_gradescope_quick(synthetic_npz, tmp_path):
    from click.testing import CliRunner
    from grader.cli import main
    bundle = tmp_path / "autograder.zip"
    r = CliRunner().invoke(main, ["gradescope-bundle", "-o", str(bundle), "--quick"])
    assert r.exit_code == 0, r.output
    root = tmp_path / "autograder"
    with zipfile.ZipFile(bundle) as z:
        names = set(z.namelist())
        assert {"setup.sh", "run_autograder", "rubric.toml",
                "grader-src/pyproject.toml", "grader-src/grader/cli.py"} <= names
        z.extractall(root / "source")
    (root / "submission").mkdir()
    shutil.copy(SUBMISSIONS / "good.py", root / "submission" / "lab.py")
    env = {**os.environ, "AUTOGRADER_ROOT": str(root), "GRADER_CIFAR10": str(synthetic_npz),
           "GRADER_BIN": str(Path(sys.executable).parent / "grader")}
    subprocess.run(["bash", str(root / "source" / "run_autograder")], env=env, check=True,
                   capture_output=True, timeout=300)
    result = json.loads((root / "results" / "results.json").read_text())
    jsonschema.validate(result, GRADESCOPE_SCHEMA)
    assert len(result["tests"]) == 6
    # a bundle built with --quick grades nothing: no score, and the student is told
    assert result["score"] == 0 and "NOT A GRADE" in result["output"]
    assert all("score" not in t for t in result["tests"])


def test_formats_from_a_results_file():
    r = load_results(Path(__file__).parent / "data" / "results_good.json")
    g = gradescope(r)
    jsonschema.validate(g, GRADESCOPE_SCHEMA)
    assert g["score"] == 10 and g["leaderboard"][0]["name"] == "Q10 test accuracy"
    xml = junit([("alice", r)])
    JUNIT_SCHEMA.validate(xml)
    root = ET.fromstring(xml.split("\n", 1)[1])
    assert len(root.find("testsuite").findall("testcase")) == 6


def test_github_annotations_and_summary(tmp_path, monkeypatch):
    from grader.formats import github
    r = load_results(Path(__file__).parent / "data" / "results_errors.json")
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    lines = []
    github(r, echo=lines.append)
    assert any(l.startswith("::error file=") and ",line=9," in l and "ZeroDivisionError" in l
               for l in lines)
    assert "| Q2 | fc | error |" in summary.read_text()


def test_visible_gpus_and_default_jobs(monkeypatch):
    """One job per GPU by default; CUDA_VISIBLE_DEVICES decides which GPUs there are."""
    from grader.batch import default_jobs
    from grader.environment import visible_gpus
    for value, expected in (("0,2", ["0", "2"]), ("-1", []), ("1,-1,2", ["1"]), ("", []),
                            (" 3 ", ["3"])):
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", value)
        assert visible_gpus() == expected, value
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1,2")
    assert default_jobs() == 3 and default_jobs(quick=True) == 3
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "-1")
    assert default_jobs() == max(1, (os.cpu_count() or 1) // 4)


def test_child_sees_only_its_gpu(tmp_path, monkeypatch):
    from grader.sandbox import child_env
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    assert child_env(tmp_path, "m", "1")["CUDA_VISIBLE_DEVICES"] == "1"
    assert child_env(tmp_path, "m")["CUDA_VISIBLE_DEVICES"] == "0,1"
    assert "XLA_PYTHON_CLIENT_PREALLOCATE" not in child_env(tmp_path, "m", "1")
    shared = child_env(tmp_path, "m", "1", gpu_shared=True)
    assert shared["XLA_PYTHON_CLIENT_PREALLOCATE"] == "false"
    assert shared["TF_FORCE_GPU_ALLOW_GROWTH"] == "true"


def test_child_gets_no_python_path_of_the_callers(tmp_path, monkeypatch):
    """Folders on the caller's PYTHONPATH are neither passed on nor in the sandbox: a bait
    file planted there reached a result once.  The child gets the grader and the
    interpreter's own site-packages."""
    from grader.confine import python_paths
    from grader.sandbox import child_env
    monkeypatch.setenv("PYTHONPATH", f"/opt/site{os.pathsep}{tmp_path}")
    path = child_env(tmp_path, "m")["PYTHONPATH"].split(os.pathsep)
    assert len(path) == 1 and (Path(path[0]) / "grader" / "sandbox.py").is_file()
    assert str(tmp_path) not in python_paths()


def test_jax_children_run_deterministic_gpu_ops(tmp_path, monkeypatch):
    from grader.sandbox import child_env
    monkeypatch.setenv("KERAS_BACKEND", "jax")
    monkeypatch.setenv("XLA_FLAGS", "--xla_dump_to=/tmp/x")
    assert child_env(tmp_path, "m")["XLA_FLAGS"] == \
        "--xla_dump_to=/tmp/x --xla_gpu_deterministic_ops=true"
    monkeypatch.setenv("XLA_FLAGS", "--xla_gpu_deterministic_ops=false")  # the user's choice
    assert child_env(tmp_path, "m")["XLA_FLAGS"] == "--xla_gpu_deterministic_ops=false"
    monkeypatch.setenv("KERAS_BACKEND", "tensorflow")
    monkeypatch.delenv("XLA_FLAGS")
    assert "XLA_FLAGS" not in child_env(tmp_path, "m")


def test_batch_pins_each_job_to_one_gpu(tmp_path, monkeypatch, synthetic_npz):
    """Two jobs on two GPUs: each grading runs on one GPU, never two at once on the same."""
    import threading

    import grader.rows as rows_module
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,5")
    graded = load_results(Path(__file__).parent / "data" / "results_good.json")
    active, seen, lock = set(), [], threading.Lock()

    def fake_check(path, options, **kwargs):
        gpu, gpu_shared = options.gpu, options.gpu_shared
        assert gpu_shared is False  # two jobs, two GPUs
        with lock:
            assert gpu not in active, f"GPU {gpu} given to two jobs at once"
            active.add(gpu)
            seen.append(gpu)
        time.sleep(0.3)
        with lock:
            active.discard(gpu)
        return graded

    monkeypatch.setattr(rows_module, "check", fake_check)
    subs = tmp_path / "subs"
    subs.mkdir()
    for name in "abcd":
        (subs / f"{name}.py").write_text(f"# student {name}\n" +
                                         (SUBMISSIONS / "good.py").read_text())
    rows = grade_batch([subs], tmp_path / "out", jobs=2, data=synthetic_npz, tasks="fc")
    # The asserts inside fake_check would be swallowed by the batch (a row "crashed"):
    # every row graded says they all held.
    assert [r.status for r in rows] == ["graded"] * 4, [r.problem for r in rows]
    assert len(rows) == 4 and len(seen) == 4 and set(seen) == {"3", "5"}


# -- every student exactly once (issue 12) ------------------------------------------------

NAMES = ["张伟_12345_assignsubmission_file_", "Müller", "a b", "a_b", "李娜"]


def test_student_folders_are_unique_stable_and_readable():
    from grader.batch import student_folder
    ids = ["张伟", "李娜", "Müller", "Muller", "a b", "a_b", "a-b", "", "..", "x" * 300]
    folders = [student_folder(i) for i in ids]
    assert len(set(folders)) == len(ids)
    assert folders == [student_folder(i) for i in ids]  # stable
    assert folders[2].startswith("Muller-") and folders[4].startswith("a_b-")
    assert all(f.isascii() and "/" not in f and not f.startswith(".") and len(f) <= 49
               for f in folders)


def test_discovery_under_dot_folders_and_dotdot(tmp_path, monkeypatch):
    course = tmp_path / ".course"
    subs = course / "subs"
    for name in NAMES:
        (subs / name).mkdir(parents=True)
        shutil.copy(SUBMISSIONS / "good.py", subs / name / "lab.py")
    (subs / "a b" / ".ipynb_checkpoints").mkdir()
    shutil.copy(SUBMISSIONS / "good.py", subs / "a b" / ".ipynb_checkpoints" / "lab.py")
    (course / "work").mkdir()
    monkeypatch.chdir(course / "work")
    entries, notes = discover(["../subs"])
    assert sorted(e.student for e in entries) == sorted(["张伟", "Müller", "a b", "a_b", "李娜"])
    assert not [n for n in notes if "candidate files" in n]  # the checkpoint copy is hidden


def test_a_class_with_non_ascii_and_colliding_names_is_graded_once_each(
        synthetic_npz, tmp_path, monkeypatch, shared_trainers):
    subs = tmp_path / ".hidden" / "subs"
    for i, name in enumerate(NAMES):
        (subs / name).mkdir(parents=True)
        # each file differs, so results can be told apart
        (subs / name / "lab.py").write_text(f"# student {i}\n" +
                                            (SUBMISSIONS / "good.py").read_text())
    monkeypatch.chdir(tmp_path / ".hidden")
    out = tmp_path / "out"
    rows = grade_batch(["subs"], out, data=synthetic_npz, quick=True, tasks="fc", jobs=2,
                       **shared_trainers)
    ids = ["张伟", "Müller", "a b", "a_b", "李娜"]
    assert sorted(r.student for r in rows) == sorted(ids)
    assert len({r.folder for r in rows}) == 5
    for r in rows:
        res = load_results(out / r.folder / "results.json")
        assert res.submission["path"] == r.path  # each folder holds its own student
    table = list(csv.DictReader(open(out / "grades.csv", encoding="utf-8")))
    assert sorted(t["student"] for t in table) == sorted(ids)
    again = grade_batch(["subs"], out, data=synthetic_npz, quick=True, tasks="fc", jobs=2,
                        **shared_trainers)
    assert all(r.cached for r in again)  # resume finds each student's own results
