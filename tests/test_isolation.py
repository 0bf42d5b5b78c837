"""Hostile and broken submissions: each ends as a graded failure within its limits, the
grader's process survives them all, and none gets credit it did not earn."""
from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest

import grader
from grader.results import ERROR, FAILED, PASSED


@pytest.fixture
def run(synthetic_npz, submission, tmp_path, shared_trainers):
    def go(name, tasks="fc", **kwargs):
        return grader.check(submission(name), data=synthetic_npz, tasks=tasks, out=tmp_path,
                            **shared_trainers, **kwargs)
    return go


def _no_credit(task):
    assert task.status in (FAILED, ERROR) and task.points == 0
    assert task.test_accuracy is None or task.test_accuracy < 0.3


def test_printing_without_end_is_bounded_and_timed_out(run):
    fc = run("prints_forever.py", task_timeout_s=5).task("fc")
    assert fc.status == ERROR and "did not finish within 5 s" in fc.reason
    assert 0 < len(fc.output_tail) <= 4000 and "spam" in fc.output_tail


def test_memory_hog_is_stopped_at_the_limit(run):
    r = run("eats_memory.py", memory_mb=1500, task_timeout_s=60)
    fc = r.task("fc")
    assert fc.status == ERROR
    assert "used more than the memory limit of 1500 MiB" in fc.reason


def test_billion_parameter_model_is_stopped(run):
    fc = run("billion_params.py", memory_mb=2000, task_timeout_s=90).task("fc")
    assert fc.status == ERROR
    assert re.search(r"used more than the memory limit of 2000 MiB|MemoryError|"
                     r"ResourceExhaustedError|OOM", fc.reason), fc.reason
    assert fc.points == 0


def _sleepers():
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if b"987654" in Path(f"/proc/{entry}/cmdline").read_bytes():
                    out.append(int(entry))
            except OSError:
                pass
    return out


def test_processes_started_by_the_submission_do_not_outlive_it(run):
    assert not _sleepers()
    run("spawns_orphan.py")
    assert not _sleepers()


def test_test_labels_are_not_reachable(run, synthetic_npz, monkeypatch):
    # even with the data path in the grader's environment
    monkeypatch.setenv("GRADER_CIFAR10", str(synthetic_npz))
    _no_credit(run("steals_labels.py").task("fc"))


def test_network_is_blocked(run, loopback_server):
    hits = loopback_server(47123)
    r = run("uses_network.py")
    if not r.environment["network_blocked"]:
        pytest.skip("this platform does not allow a network namespace")
    assert hits == []
    fc = r.task("fc")
    assert "connection failed" in fc.output_tail, fc.output_tail
    assert fc.status == FAILED and fc.points == 0  # the frozen model cannot learn


def test_writing_outside_the_working_directory_is_named_and_fails(run):
    target = Path("/tmp/grader-escape-test.txt")
    target.unlink(missing_ok=True)
    r = run("writes_outside.py")
    fc = r.task("fc")
    if r.environment["sandbox"].get("forked") or r.environment["sandbox"]["kind"] == "landlock":
        # Held to its own folder by Landlock: the write itself is refused, and named.
        assert not target.exists()
        assert fc.status == ERROR and fc.points == 0
        assert "Permission denied: '/tmp/grader-escape-test.txt'" in fc.reason, fc.reason
    else:  # a private /tmp (bubblewrap) or none: the write is named and fails the task
        target.unlink(missing_ok=True)
        assert fc.status == FAILED
        assert "wrote outside its working directory: /tmp/grader-escape-test.txt" in fc.reason


def test_a_builder_may_use_tempfile_and_keras_home(run):
    """The temporary folder and keras' home are the builder's own folder, forked or
    started (a forked builder once kept its server's, which it cannot write)."""
    fc = run("uses_tempfile.py").task("fc")
    assert fc.error_kind is None and fc.test_accuracy is not None, fc.reason


def test_monkeypatching_keras_numpy_or_the_grader_gains_nothing(run):
    _no_credit(run("tampers.py").task("fc"))


def test_training_inside_the_builder_is_named_and_discarded(run):
    fc = run("trains_in_builder.py").task("fc")
    builder = [f for f in fc.findings if f.check == "builder"]
    assert builder and "called model.fit()" in builder[0].message
    assert "called model.load_weights()" in builder[0].message
    assert "re-initialises" in builder[0].message
    _no_credit(fc)


def test_sleeping_inside_training_times_out(run):
    fc = run("sleeps_in_training.py", task_timeout_s=10).task("fc")
    assert fc.status == ERROR and "training did not finish within 10 s" in fc.reason


@pytest.mark.parametrize("name, expected", [
    ("exits_hard_on_import.py", "stopped the process: the process running the submission "
                                "exited with code 0"),
    ("exits_in_builder_softly.py", "SystemExit while building the model (line 6): "
                                   "the code called sys.exit(1)"),
])
def test_exits(run, name, expected):
    fc = run(name).task("fc")
    assert fc.status == ERROR and expected in fc.reason


def test_one_run_survives_a_hostile_task_and_grades_the_next(run):
    """A task that kills its process is followed by one graded in a fresh process."""
    r = run("exits_in_builder.py", tasks="fc,cnn")
    assert r.task("fc").status == ERROR
    assert r.task("cnn").status in (PASSED, FAILED) and r.task("cnn").test_accuracy is not None


def test_resume_keeps_finished_tasks(shared_trainers, synthetic_npz, submission, tmp_path):
    first = grader.check(submission("raises_in_builder.py"), data=synthetic_npz, tasks="fc",
                         out=tmp_path, **shared_trainers)
    seen = []

    class Spy(grader.progress.GradeProgress):
        def task_started(self, task, epochs):
            seen.append(task.id)

    again = grader.check(submission("raises_in_builder.py"), data=synthetic_npz,
                         tasks="fc,cnn", out=tmp_path, resume=True, progress=Spy(),
                         **shared_trainers)
    assert seen == ["cnn"]  # fc came from the file
    assert again.task("fc").reason == first.task("fc").reason
    assert [t.id for t in again.tasks] == ["fc", "cnn"]


def test_forged_messages_get_nothing(run):
    fc = run("forges_results.py", task_timeout_s=30).task("fc")
    assert fc.status == ERROR and fc.points == 0 and fc.test_accuracy is None
    assert "sent malformed results (the model description is not an object)" in fc.reason


def test_whole_submission_time_limit(run):
    r = run("hangs_in_builder.py", tasks="fc,cnn", task_timeout_s=6, submission_timeout_s=5)
    assert "what was left of the submission's time limit of 5 s" in r.task("fc").reason
    assert "Not graded: the submission's time limit of 5 s was used up" in r.task("cnn").reason


@pytest.mark.parametrize("name, why", [
    ("sends_huge_param_count.py", "the parameter counts are malformed"),
    ("sends_nan_without_epoch.py", "the NaN report is malformed"),
    ("sends_huge_predictions_header.py", "expected predictions of shape"),
])
def test_a_message_the_grader_cannot_take_is_the_students_failure(run, name, why):
    """Never "a bug in the grader", never an exception out of check, never a point."""
    r = run(name, task_timeout_s=30)
    fc = r.task("fc")
    assert fc.points == 0 and fc.status in (ERROR, FAILED), fc.reason
    assert fc.error_kind != "grader", fc.reason
    assert why in fc.reason + " ".join(f.message for f in fc.findings), fc.reason


def test_garbage_and_a_flood_on_the_pipe_change_nothing(run):
    events = []

    class Count(grader.progress.GradeProgress):
        def event(self, msg):
            events.append(msg)

    fc = run("floods_the_pipe.py", progress=Count()).task("fc")
    assert fc.error_kind is None and fc.epochs_run == 2 and fc.test_accuracy is not None
    # what reaches the display: each epoch once, within the budget, and a few bar updates
    epochs = [e["epoch"] for e in events if e["ev"] == "epoch"]
    assert epochs == sorted(set(epochs)) and max(epochs) <= 2, epochs
    assert len(events) < 200, len(events)


def test_a_layer_named_like_another_is_checked_as_what_it_is(run):
    fc = run("disguised_layer.py").task("fc")
    assert fc.status == FAILED and fc.points == 0
    assert "may not use Conv2D" in fc.reason
    named = [f for f in fc.findings if f.check == "custom_layer"]
    assert named and "Dense (a subclass of Conv2D)" in named[0].message


def test_a_predictions_file_swapped_for_a_fifo_or_a_link_is_refused_at_once(tmp_path):
    """The grader opens the file once, never blocking and never through a link: a FIFO put
    in its place between the check and the read once hung the grader for ever."""
    import numpy as np

    from grader.replies import load_scores

    good = tmp_path / "p.npy"
    np.save(good, np.ones((4, 10), "float32"))
    assert load_scores(str(good), 4, 10).shape == (4, 10)
    os.mkfifo(tmp_path / "fifo.npy")
    with pytest.raises(ValueError, match="not a regular file"):
        load_scores(str(tmp_path / "fifo.npy"), 4, 10)
    (tmp_path / "link.npy").symlink_to(good)
    with pytest.raises(OSError):
        load_scores(str(tmp_path / "link.npy"), 4, 10)
    np.save(tmp_path / "long.npy", np.ones((5, 10), "float32"))
    with pytest.raises(ValueError, match="expected predictions of shape"):
        load_scores(str(tmp_path / "long.npy"), 4, 10)
    short = tmp_path / "short.npy"
    short.write_bytes(good.read_bytes()[:-8])
    with pytest.raises(ValueError, match="bytes of data"):
        load_scores(str(short), 4, 10)


def _cgroups_here() -> bool:
    from grader import cgroups

    return cgroups.available() is not None


SANDBOXES = [k for k in ("bubblewrap", "landlock")
             if __import__("grader.confine").confine.detect(k).kind == k]


@pytest.mark.skipif(not _cgroups_here(),
                    reason="no cgroup can be made here: only the session's memory is polled")
@pytest.mark.parametrize("kind", SANDBOXES)
def test_memory_held_outside_the_childs_session_counts(run, kind):
    """1.8 GB held by a process in a new session with an empty environment (900 MB in a
    memfd, 900 MB of its own) passed a 1500 MiB limit when only the child's session was
    polled, and outlived the grading under Landlock."""
    started = time.monotonic()
    fc = run("eats_memory_elsewhere.py", memory_mb=1500, task_timeout_s=60,
             sandbox=kind).task("fc")
    assert fc.status == ERROR and "used more than the memory limit of 1500 MiB" in fc.reason
    assert time.monotonic() - started < 50
    assert not [p for p in os.listdir("/proc") if p.isdigit() and _holds(p)]


def _holds(pid: str) -> bool:
    try:
        return b"memfd_create('hoard')" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


@pytest.mark.parametrize("kind", SANDBOXES)
def test_the_working_folder_has_a_limit_in_all(run, kind, fast_rubric, tmp_path):
    """Four files under the per-file cap, 160 MB in all, against a 100 MiB limit."""
    rubric = Path(fast_rubric())
    rubric.write_text(rubric.read_text().replace("max_file_mb = 2048", "max_file_mb = 100"))
    started = time.monotonic()
    fc = run("fills_the_disk.py", rubric=rubric, sandbox=kind).task("fc")
    assert fc.status == ERROR and fc.error_kind == "disk", fc.reason
    assert "wrote more than 100 MiB in its working folder" in fc.reason
    assert time.monotonic() - started < 40


@pytest.mark.skipif(not _cgroups_here(), reason="no cgroup can be made here: no process limit")
@pytest.mark.parametrize("kind", SANDBOXES)
def test_processes_and_threads_have_a_limit(run, kind):
    """20,000 threads: the cgroup's limit (cgroups.MAX_TASKS) stops them at about 4,000."""
    started = time.monotonic()
    fc = run("starts_threads.py", task_timeout_s=60, sandbox=kind).task("fc")
    assert fc.status == ERROR and fc.error_kind == "exception", fc.reason
    assert "can't start new thread" in fc.reason, fc.reason
    assert time.monotonic() - started < 50
