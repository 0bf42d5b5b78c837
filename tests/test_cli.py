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
