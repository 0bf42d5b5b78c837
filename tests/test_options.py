"""One options value for every way of grading; statuses and error kinds as types."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

import grader
from grader.errors import UsageError
from grader.options import GradeOptions
from grader.results import (ERROR, ErrorKind, Results, Status, TaskResult, load_results,
                            save_results)
from grader.rubric import load_rubric


@pytest.mark.parametrize("field,value,message", [
    ("seeds", 0, "seeds must be an integer >= 1. Received: 0"),
    ("seeds", True, "seeds must be an integer >= 1. Received: True"),
    ("seed", -1, "seed must be an integer >= 0. Received: -1"),
    ("steps_per_execution", 0, "steps_per_execution must be an integer >= 1. Received: 0"),
    ("task_timeout_s", 0, "task_timeout_s must be a positive number of seconds. Received: 0"),
    ("submission_timeout_s", -5.0, "submission_timeout_s must be a positive number of "
                                   "seconds. Received: -5.0"),
    ("memory_mb", 100, "memory_mb (the memory limit, MiB) must be an integer >= 256. "
                       "Received: 100"),
    ("mixed_precision", "float16", "mixed_precision must be one of mixed_float16, "
                                   "mixed_bfloat16 or None. Received: 'float16'"),
    ("sandbox", "docker", "sandbox must be one of auto, bubblewrap, landlock, none. "
                          "Received: 'docker'"),
])
def test_a_bad_option_is_refused_when_made_naming_the_value(field, value, message):
    with pytest.raises(UsageError) as info:
        GradeOptions(**{field: value})
    assert info.value.message == message


def test_options_travel_as_json_and_unknown_keys_are_refused_with_a_hint():
    opts = GradeOptions(tasks="fc, cnn", seed=3, seeds=2, quick=True, memory_mb=4096,
                        mixed_precision="mixed_bfloat16", sandbox="landlock", gpu="1")
    assert opts.tasks == ("fc", "cnn")
    assert GradeOptions.from_dict(json.loads(json.dumps(opts.to_dict()))) == opts
    with pytest.raises(UsageError) as info:
        GradeOptions.from_dict({**opts.to_dict(), "seeed": 1})
    assert "Unknown grading option 'seeed'" in info.value.message
    assert info.value.hint == "Did you mean 'seed'?"
    with pytest.raises(UsageError, match="Unknown grading option 'quik'"):
        grader.check("nothing.py", quik=True)


def test_identity_is_what_changes_a_result_with_the_rubric_defaults_filled_in():
    rubric = load_rubric(None)
    base = GradeOptions()
    assert base.identity(rubric)["seed"] == rubric.seed
    assert base.identity(rubric) == GradeOptions(seed=rubric.seed).identity(rubric)
    assert base.identity(rubric)["memory_mb"] == rubric.limits.memory_mb
    # where and how fast it runs: the same job
    for same in (dict(steps_per_execution=1), dict(sandbox="none"), dict(gpu="0"),
                 dict(gpu_shared=True), dict(tasks="fc")):
        assert base.replace(**same).identity(rubric) == base.identity(rubric), same
    # what it computes: another job
    for other in (dict(quick=True), dict(seeds=3), dict(seed=rubric.seed + 1),
                  dict(mixed_precision="mixed_float16"), dict(task_timeout_s=60),
                  dict(memory_mb=1024), dict(submission_timeout_s=10)):
        assert base.replace(**other).identity(rubric) != base.identity(rubric), other


def test_an_earlier_run_counts_only_for_the_same_job(tmp_path):
    from grader.jobs import earlier_run, job_identity

    rubric = load_rubric(None)
    job = job_identity(GradeOptions(), rubric, "a" * 64, "f" * 16)
    r = Results(submission={"sha256": "a" * 64}, rubric={}, mode="full", seed=0,
                started_at="now", job=job)
    save_results(r, tmp_path / "results.json")
    assert earlier_run(tmp_path / "results.json", job) is not None
    for other in (job_identity(GradeOptions(mixed_precision="mixed_bfloat16"), rubric,
                               "a" * 64, "f" * 16),
                  job_identity(GradeOptions(), rubric, "b" * 64, "f" * 16),
                  job_identity(GradeOptions(), rubric, "a" * 64, "0" * 16)):
        assert earlier_run(tmp_path / "results.json", other) is None


def test_check_and_grade_hand_the_same_options_to_the_library(monkeypatch, tmp_path):
    import grader.batch
    import grader.grading
    from grader.cli import main

    seen = {}

    def fake_check(submission, options, **kw):
        seen["check"] = options
        raise UsageError("stop here")

    def fake_batch(paths, out, options, **kw):
        seen["grade"] = options
        raise UsageError("stop here")

    monkeypatch.setattr(grader.grading, "check", fake_check)
    monkeypatch.setattr(grader.batch, "grade_batch", fake_batch)
    flags = ["--tasks", "fc,cnn", "--seed", "4", "--seeds", "2", "--quick", "--timeout", "30",
             "--submission-timeout", "90", "--memory-limit", "2048",
             "--steps-per-execution", "8", "--mixed-precision", "mixed_bfloat16",
             "--sandbox", "none"]
    for args in (["check", "x.py", *flags], ["grade", "x.py", "--out", str(tmp_path), *flags]):
        r = CliRunner().invoke(main, args)
        assert r.exit_code == 2, r.output
    assert seen["check"] == seen["grade"] == GradeOptions(
        tasks=("fc", "cnn"), seed=4, seeds=2, quick=True, task_timeout_s=30.0,
        submission_timeout_s=90.0, memory_mb=2048, steps_per_execution=8,
        mixed_precision="mixed_bfloat16", sandbox="none")


def test_statuses_and_error_kinds_are_types_that_read_and_write_as_strings(tmp_path):
    t = TaskResult("fc", "Q2", "FC", "build_fc_model", status=ERROR, reason="x",
                   error_kind=ErrorKind.TIMEOUT)
    r = Results(submission={}, rubric={}, mode="full", seed=0, started_at="now", tasks=[t])
    save_results(r, tmp_path / "results.json")
    raw = json.loads((tmp_path / "results.json").read_text())["tasks"][0]
    assert raw["status"] == "error" and raw["error_kind"] == "timeout"
    back = load_results(tmp_path / "results.json").tasks[0]
    assert back.status is Status.ERROR and back.error_kind is ErrorKind.TIMEOUT
    assert back.status == "error" and f"{back.status}" == "error" and str(back.status) == "error"
    raw["status"] = "passd"
    (tmp_path / "bad.json").write_text(json.dumps({**json.loads(
        (tmp_path / "results.json").read_text()), "tasks": [raw]}))
    with pytest.raises(grader.GraderError, match="not a grader results file"):
        load_results(tmp_path / "bad.json")


def test_what_a_ta_should_look_at_comes_from_the_error_kind_not_the_wording():
    from grader.rows import look_at

    def results(kind, reason):
        t = TaskResult("fc", "Q2", "FC", "build_fc_model", status=ERROR, reason=reason,
                       error_kind=kind)
        return Results(submission={}, rubric={}, mode="full", seed=0, started_at="now",
                       tasks=[t])

    assert look_at(results(ErrorKind.TIMEOUT, "stopped")) == "timed out"
    assert look_at(results(ErrorKind.MEMORY, "stopped")) == "out of memory"
    assert look_at(results(ErrorKind.CRASH, "gone")) == "crashed"
    assert look_at(results(ErrorKind.IMPORT, "no")) == "could not be imported"
    assert look_at(results(ErrorKind.GRADER, "bug")) == "grader bug"
    # A student's own exception whose message mimics the grader's words is not a crash.
    assert look_at(results(ErrorKind.EXCEPTION, "ValueError: did not finish within 5 s; "
                                                 "exited with code 9; memory limit")) is None
