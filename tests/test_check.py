"""Grading each fixture submission end to end on synthetic data (a child process each)."""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

import grader
from grader.errors import UsageError
from grader.results import HELD, CHECKED, ERROR, FAILED, PASSED, load_results

from conftest import REPO

_cache: dict = {}


@pytest.fixture
def grade(synthetic_npz, submission, tmp_path_factory, shared_trainers):
    """Grade a fixture once per session: many tests read one run."""
    def run(name: str, tasks: str, **kwargs):
        key = (name, tasks, tuple(sorted(kwargs.items())))
        if key not in _cache:
            out = tmp_path_factory.mktemp(name.replace(".py", ""))
            _cache[key] = grader.check(submission(name), data=synthetic_npz, tasks=tasks,
                                       out=out, **shared_trainers, **kwargs)
        return _cache[key]
    return run


def test_good_submission_passes_every_task(grade, synthetic_npz):
    r = grade("good.py", "fc,cnn,cnn_dropout,cnn_batchnorm,final")
    assert [t.status for t in r.tasks] == [PASSED] * 5, [t.reason for t in r.tasks]
    assert r.passed and r.points == r.max_points == 10
    fc = r.task("fc")
    assert fc.test_accuracy >= 0.45 and fc.epochs == fc.epochs_run == 3 and fc.batch_size == 32
    assert set(fc.history) >= {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert len(fc.history["val_accuracy"]) == 3
    assert fc.params_total == 32 * 32 * 3 * 64 + 64 + 64 * 10 + 10
    assert sum(map(sum, fc.confusion_matrix)) == r.data["n_test_used"] == 300
    assert r.task("cnn").params_total < fc.params_total
    assert r.comparisons[0].status == PASSED and r.comparisons[0].points == 1
    same = [f for f in r.task("cnn_dropout").findings if f.check == "same_as"]
    assert same and same[0].ok
    # provenance recorded with the results
    assert r.environment["device"]["backend"] == "tensorflow"
    assert r.environment["versions"]["keras"].startswith("3.")
    assert r.environment["determinism"] is True
    if Path("/proc/cpuinfo").exists():  # what the CPU's kernels are picked by, recorded
        assert r.environment["device"]["cpu_isa"].startswith("family ")
    assert r.data["fingerprint"] and r.seed == 0 and r.rubric["version"] == "1.0.0"


def test_results_json_round_trips(grade, tmp_path):
    r = grade("good.py", "fc,cnn,cnn_dropout,cnn_batchnorm,final")
    path = tmp_path / "results.json"
    grader.results.save_results(r, path)
    data = json.loads(path.read_text())
    assert data["schema_version"] == 1 and data["points"] == 10
    again = load_results(path)
    assert again.to_dict() == r.to_dict()


def test_same_seed_gives_the_same_numbers(grade):
    a = grade("good.py", "fc,cnn,cnn_dropout,cnn_batchnorm,final")
    b = grade("good.py", "fc", seed=0)
    assert a.task("fc").history == b.task("fc").history
    assert a.task("fc").test_accuracy == b.task("fc").test_accuracy


def test_missing_function_names_it_and_grades_the_rest(grade):
    r = grade("missing_function.py", "fc,cnn")
    cnn = r.task("cnn")
    assert cnn.status == ERROR
    assert "build_cnn_model is not defined in missing_function.py" in cnn.reason
    assert "'build_cnn_modle'" in cnn.reason
    assert "def build_cnn_model(input_shape=(32, 32, 3), num_classes=10)" in cnn.reason
    assert r.task("fc").test_accuracy is not None  # the other task still trained


@pytest.mark.parametrize("name, expected", [
    ("syntax_error.py", "SyntaxError: expected ':' (line 4)"),
    ("exits_on_import.py", "SystemExit: the code called sys.exit("),
])
def test_import_failures_fail_every_task_with_the_students_line(grade, name, expected):
    r = grade(name, "fc")
    fc = r.task("fc")
    assert fc.status == ERROR
    assert f"{name} could not be imported" in fc.reason and expected in fc.reason


def test_a_missing_package_fails_the_builders_that_need_it(grade):
    fc = grade("import_error.py", "fc").task("fc")
    assert fc.status == ERROR
    assert fc.reason.startswith("build_fc_model needs 'tensorflow_addons_that_does_not_exist' "
                                "from `import tensorflow_addons_that_does_not_exist` (line 2), "
                                "which cannot be imported here: ModuleNotFoundError: No "
                                "module named 'tensorflow_addons_that_does_not_exist'.")
    assert "The grading environment has no package `tensorflow_addons_that_does_not_exist`" \
        in fc.reason
    assert "site-packages" not in fc.reason and "/root" not in fc.reason


def test_loop_at_import_times_out(grade, fast_rubric):
    r = grade("loops_on_import.py", "fc", rubric=fast_rubric(import_timeout_s=12))
    assert r.task("fc").status == ERROR
    assert "did not finish within 12 s" in r.task("fc").reason
    assert "top level" in r.task("fc").reason


def test_closing_the_pipes_and_running_on_is_an_error_not_a_hang(grade, fast_rubric):
    """The end of the child's messages without the end of the child: it is stopped at
    once, not waited for until its time limit (or for ever)."""
    t0 = time.monotonic()
    r = grade("closes_its_pipes.py", "fc", rubric=fast_rubric(import_timeout_s=120))
    fc = r.task("fc")
    assert fc.status == ERROR and fc.points == 0
    assert "closed the grader's message pipe" in fc.reason, fc.reason
    assert time.monotonic() - t0 < 60


def test_exception_in_builder_shows_line_and_other_task_is_graded(grade):
    r = grade("raises_in_builder.py", "fc,cnn")
    fc = r.task("fc")
    assert fc.status == ERROR
    assert fc.reason.startswith("build_fc_model: ZeroDivisionError while building the model "
                                "(line 9)")
    assert fc.error["frames"][-1]["code"] == "units = 512 // 0"
    assert r.task("cnn").status in (PASSED, FAILED) and r.task("cnn").test_accuracy is not None
    assert r.comparisons[0].status == ERROR


def test_hanging_builder_times_out_and_other_task_is_graded(grade, fast_rubric):
    r = grade("hangs_in_builder.py", "fc,cnn", rubric=fast_rubric(task_timeout_s=8))
    assert r.task("fc").status == ERROR
    assert "did not finish within 8 s" in r.task("fc").reason
    assert r.task("cnn").test_accuracy is not None


def test_process_exit_in_builder_is_reported_and_other_task_is_graded(grade):
    r = grade("exits_in_builder.py", "fc,cnn")
    assert r.task("fc").status == ERROR
    assert "exited with code 3" in r.task("fc").reason
    assert r.task("cnn").test_accuracy is not None


def test_wrong_shapes_fail_without_training(grade):
    r = grade("wrong_shapes.py", "fc,cnn")
    fc, cnn = r.task("fc"), r.task("cnn")
    assert fc.status == FAILED and cnn.status == FAILED
    assert "Expected output shape (None, 10), one score per class. Received: " \
           "output_shape=(None, 5)" in fc.reason
    assert "Expected input shape (None, 32, 32, 3). Received: input_shape=(None, 28, 28, 1)" \
        in cnn.reason
    assert fc.history == {} and fc.test_accuracy is None  # not trained


def test_output_activation_rules(grade):
    r = grade("output_activation.py", "fc,cnn")
    fc = r.task("fc")
    assert fc.status == FAILED and "Expected a softmax output, or logits" in fc.reason
    cnn_checks = {f.check: f for f in r.task("cnn").findings}
    assert cnn_checks["output_activation"].ok
    assert r.task("cnn").compile["loss"]["from_logits"] is True
    assert r.task("cnn").compile["compiled_by"] == "student"


def test_fc_with_convolution_fails(grade):
    fc = grade("fc_with_conv.py", "fc").task("fc")
    assert fc.status == FAILED and "may not use Conv2D" in fc.reason


def test_dropout_model_that_changes_more_than_dropout_fails_with_the_diff(grade):
    r = grade("dropout_changed.py", "cnn_dropout")  # cnn is built (not trained) to compare
    t = r.task("cnn_dropout")
    assert t.status == FAILED
    assert "layer 1 Conv2D: filters 16 -> 32" in t.reason
    assert "added Dense(units=64, activation=relu)" in t.reason


def test_over_budget_is_a_failed_check_not_trimmed(grade):
    r = grade("over_budget.py", "fc")
    fc = r.task("fc")
    assert fc.status == FAILED and fc.epochs == 50 and fc.history == {}
    assert "TRAINING asks for 50 epochs; the budget for 'fc' is 20" in fc.reason
    messages = [f.message for f in fc.findings]
    assert any("did you mean 'batch_size'?" in m for m in messages)
    assert any("'fully_connected' that is no task" in n.message for n in r.notes)


def test_nan_loss_fails_with_advice(grade):
    fc = grade("nan_loss.py", "fc").task("fc")
    assert fc.status == FAILED
    assert "The loss became NaN or infinite at epoch 1" in fc.reason
    assert "learning rate" in fc.reason
    assert fc.epochs_run == 1


def test_one_hot_loss_gets_one_hot_labels(grade):
    fc = grade("one_hot.py", "fc").task("fc")
    assert fc.compile["loss"]["one_hot"] is True
    assert fc.status == PASSED and fc.test_accuracy > 0.45


def test_not_a_model(grade):
    fc = grade("not_a_model.py", "fc").task("fc")
    assert fc.status == ERROR
    assert "build_fc_model() must return a keras.Model. Received: builtins.list" in fc.reason


def test_below_threshold(grade):
    fc = grade("below_threshold.py", "fc").task("fc")
    assert fc.status == FAILED
    assert fc.reason.startswith("Test accuracy") and "below the threshold of 45%" in fc.reason
    assert fc.points == 0


def test_quick_mode_gives_no_accuracy_verdict(grade):
    r = grade("good.py", "fc,cnn", quick=True)
    assert r.mode == "quick"
    assert all(t.status == CHECKED and t.test_accuracy is None for t in r.tasks)
    assert all(t.points == 0 for t in r.tasks) and r.points is None and r.max_points is None
    assert r.comparisons[0].status == CHECKED and r.comparisons[0].points == 0
    assert all(t.epochs_run == 1 for t in r.tasks)
    assert r.data["n_train_used"] <= 512 and r.data["n_test_used"] <= 200
    # No accuracy in any form: no confusion matrix, per-class accuracy or mistakes.
    assert all(t.confusion_matrix is None and t.per_class_accuracy is None
               and not t.misclassified for t in r.tasks)


def test_two_lanes_grade_what_one_lane_grades(synthetic_npz, submission, tmp_path):
    """A quick check runs two children side by side on two or more cores; each task builds
    and trains from its own seed, so the results are those of one child, in the same
    order, and the file written along the way lists only finished tasks."""
    saved = []

    class Spy(grader.progress.GradeProgress):
        def task_finished(self, result):
            path = tmp_path / "two" / "results.json"
            saved.append([t["id"] for t in json.loads(path.read_text())["tasks"]]
                         if path.exists() else [])

    tasks = "fc,cnn,cnn_dropout"
    one = grader.check(submission("good.py"), data=synthetic_npz, tasks=tasks, quick=True,
                       lanes=1, out=tmp_path / "one")
    two = grader.check(submission("good.py"), data=synthetic_npz, tasks=tasks, quick=True,
                       lanes=2, out=tmp_path / "two", progress=Spy())
    assert one.environment["lanes"] == 1 and two.environment["lanes"] == 2
    # one builder for the submission, a trainer per lane
    assert one.environment["child_starts"] == 2 and two.environment["child_starts"] == 3
    assert [t.id for t in two.tasks] == [t.id for t in one.tasks] == tasks.split(",")
    for a, b in zip(one.tasks, two.tasks):
        assert (a.status, a.reason, a.history, a.confusion_matrix, a.description) == \
            (b.status, b.reason, b.history, b.confusion_matrix, b.description), a.id
    assert [c.status for c in one.comparisons] == [c.status for c in two.comparisons]
    assert two.estimate["upper_bound"] and not one.estimate["upper_bound"]
    from grader.console import estimate_line
    assert "at most about" in estimate_line(two.estimate)
    assert len(saved) == 3 and len(saved[0]) == 0 and len(saved[1]) == 1
    assert all(ids == sorted(ids, key=tasks.split(",").index) for ids in saved)


def test_lanes_take_tasks_last_first_with_a_compared_task_before_its_copy():
    """Several lanes take the longest (last) tasks first, but the task another is compared
    with comes before it, so its description is usually there when the copy needs it."""
    from grader.lanes import lane_order
    from grader.rubric import load_rubric

    tasks = list(load_rubric(None).tasks)
    assert [t.id for t in lane_order(tasks)] == ["final", "cnn_batchnorm", "cnn",
                                                 "cnn_dropout", "fc"]
    for n in range(1, len(tasks) + 1):
        order = [t.id for t in lane_order(tasks[:n])]
        assert sorted(order) == sorted(t.id for t in tasks[:n])
        if "cnn_dropout" in order:
            assert order.index("cnn") < order.index("cnn_dropout")
    without = [t for t in tasks if t.id != "cnn"]
    assert [t.id for t in lane_order(without)] == ["final", "cnn_batchnorm", "cnn_dropout",
                                                   "fc"]


def test_results_file_is_written_after_every_task(
        shared_trainers, synthetic_npz, submission, tmp_path):
    seen = []

    class Spy(grader.progress.GradeProgress):
        def task_finished(self, result):
            seen.append([t["id"] for t in json.loads((tmp_path / "results.json").read_text())
                         ["tasks"]] if (tmp_path / "results.json").exists() else None)

    grader.check(submission("raises_in_builder.py"), data=synthetic_npz, **shared_trainers,
                 tasks="fc,cnn", out=tmp_path, progress=Spy(), quick=True, lanes=1)
    # when cnn finishes, the file already holds fc's result
    assert seen[1] == ["fc"]
    assert [t["id"] for t in json.loads((tmp_path / "results.json").read_text())["tasks"]] == \
        ["fc", "cnn"]


def test_steps_per_execution_keeps_the_maths(grade):
    one = grade("good.py", "fc", steps_per_execution=1).task("fc")
    many = grade("good.py", "fc", steps_per_execution=8).task("fc")
    assert one.history == many.history
    assert one.test_accuracy == many.test_accuracy
    assert many.compile["steps_per_execution"] == 8


def test_borderline_run_is_regraded_with_more_seeds(
        shared_trainers, synthetic_npz, submission, tmp_path):
    """A rubric whose fc threshold sits where good.py lands: the grader re-trains."""
    from grader.html_report import render_report
    first = grader.check(submission("good.py"), data=synthetic_npz, tasks="fc",
                         **shared_trainers)
    acc = first.task("fc").test_accuracy
    text = (Path(__file__).resolve().parent.parent / "rubrics" / "cifar10.toml").read_text()
    rubric = tmp_path / "borderline.toml"
    rubric.write_text(text.replace("threshold = 0.45", f"threshold = {acc - 0.005:.4f}"))
    r = grader.check(submission("good.py"), data=synthetic_npz, **shared_trainers,
                     tasks="fc", rubric=rubric)
    fc = r.task("fc")
    assert fc.borderline and [run["seed"] for run in fc.runs] == [0, 1, 2]
    assert fc.runs[0]["test_accuracy"] == acc  # the first run is the plain run
    accs = [run["test_accuracy"] for run in fc.runs]
    assert fc.test_accuracy == pytest.approx(sum(accs) / 3)
    assert "mean of 3 seeds" in fc.reason and "re-graded with more seeds" in fc.reason
    assert "Trained 3 times (the first run landed within the borderline band" in \
        render_report(r)


def test_seeds_option_reports_every_run(grade):
    fc = grade("good.py", "fc", seeds=2).task("fc")
    assert [run["seed"] for run in fc.runs] == [0, 1] and not fc.borderline
    assert fc.test_accuracy_std is not None


def test_students_schedule_loss_and_encoding_are_kept(grade):
    fc = grade("lr_schedule.py", "fc").task("fc")
    assert fc.compile["compiled_by"] == "student"
    assert fc.compile["optimizer"]["name"] == "Adam"
    assert fc.compile["optimizer"]["schedule"] == "ExponentialDecay"
    assert fc.compile["loss"]["one_hot"] is True and fc.compile["loss"]["from_logits"] is True
    assert fc.status == PASSED, fc.reason


def test_mixed_precision_is_an_opt_in_that_is_recorded(
        shared_trainers, grade, synthetic_npz, submission):
    """The student's model is built under the policy, the run says so, and it is not
    compared with the float32 reference."""
    from grader.reference import comparison
    r = grade("good.py", "fc", mixed_precision="mixed_bfloat16")
    fc = r.task("fc")
    assert r.environment["dtype_policy"] == "mixed_bfloat16"
    dense = [l for l in fc.description["layers"] if l["class_name"] == "Dense"][0]
    assert dense["config"]["dtype"]["config"]["name"] == "mixed_bfloat16"
    assert fc.test_accuracy is not None and fc.status == "passed"
    ref = {"rubric": dict(r.rubric), "data": dict(r.data), "environment": {},
           "tasks": {"fc": {}}}
    assert "trained under the mixed_bfloat16 dtype policy, the reference in float32" in \
        comparison(r, ref)["fc"]["why"]
    assert grade("good.py", "fc").environment["dtype_policy"] == "float32"
    with pytest.raises(UsageError, match="Received: 'float16'"):
        grader.check(submission("good.py"), data=synthetic_npz, **shared_trainers,
                     mixed_precision="float16")


# -- verdicts a TA can sign (issue 12) ----------------------------------------------------

def test_q6_without_a_cnn_is_not_checked_and_earns_nothing(grade):
    for tasks in ("cnn,cnn_dropout", "cnn_dropout"):
        r = grade("dropout_without_cnn.py", tasks, quick=True)
        q6 = r.task("cnn_dropout")
        assert q6.status == FAILED and q6.points == 0, q6.reason
        assert "Q6 cannot be checked" in q6.reason and "'cnn' model did not build" in q6.reason


def test_q6_training_must_not_change_either(grade):
    r = grade("dropout_changed_training.py", "cnn,cnn_dropout", quick=True)
    q6 = r.task("cnn_dropout")
    assert q6.status == FAILED, q6.reason
    checks = {f.check: f for f in q6.findings}
    assert checks["same_as"].ok  # the layers are the CNN's plus Dropout
    for part in ("optimizer Adam -> SGD", "epochs 1 -> 2", "batch size 32 -> 64"):
        assert part in checks["same_training"].message
    assert r.task("cnn").status == CHECKED


def test_nested_models_are_graded_through_their_nesting(grade):
    r = grade("nested_model.py", "fc")
    fc = r.task("fc")
    # graded through the nesting; held, since its custom layer cannot cross to the trainer
    assert fc.status == HELD and "Test accuracy" in fc.reason, fc.reason
    assert "`Scale` (a subclass of Layer)" in fc.reason
    assert fc.description["output_activation"] == "softmax"
    assert [l["class_name"] for l in fc.description["layers"]] == \
        ["Flatten", "Dense", "Scale", "Dense"]


def test_labels_follow_every_loss(grade):
    r = grade("losses.py", "fc,cnn,cnn_batchnorm,final", quick=True)
    assert [t.status for t in r.tasks] == [CHECKED] * 4, [t.reason for t in r.tasks]
    loss = {t.id: t.compile["loss"] for t in r.tasks}
    assert loss["fc"]["one_hot"] and loss["fc"]["encoding"] == "one_hot"
    assert loss["cnn"]["one_hot"] and loss["cnn"]["encoding"] == "one_hot"
    assert loss["cnn_batchnorm"]["one_hot"] and loss["cnn_batchnorm"]["encoding"] == "probe"
    assert loss["cnn_batchnorm"]["encoding_note"].startswith("custom loss: one-hot labels")
    assert not loss["final"]["one_hot"]
    assert loss["final"]["encoding_note"].startswith("custom loss: integer labels")


def test_borderline_seeds_that_fail_count(shared_trainers, synthetic_npz, submission, tmp_path):
    """Seeds 3 and 4 train; seed 5 crashes in the builder. The crash is a failed run."""
    text = (REPO / "rubrics" / "cifar10.toml").read_text()
    rubric = tmp_path / "wide_band.toml"
    rubric.write_text(text.replace("borderline_band = 0.025", "borderline_band = 0.9"))
    r = grader.check(submission("unstable_seeds.py"), data=synthetic_npz, **shared_trainers,
                     tasks="fc", seed=3, rubric=rubric)
    fc = r.task("fc")
    assert fc.borderline and [run["seed"] for run in fc.runs] == [3, 4, 5]
    assert "test_accuracy" in fc.runs[0] and "test_accuracy" in fc.runs[1]
    assert "unlucky seed" in fc.runs[2]["error"]
    assert fc.test_accuracy == pytest.approx((fc.runs[0]["test_accuracy"]
                                              + fc.runs[1]["test_accuracy"]) / 3)
    assert fc.status == FAILED and fc.points == 0
    assert "1 of 3 seeds did not finish" in fc.reason and "seed 5 failed" in fc.reason
    assert fc.shown_seed == 3


def test_a_corrupt_reference_file_is_said_not_ignored(
        shared_trainers, synthetic_npz, submission, tmp_path):
    bad = tmp_path / "ref.json"
    bad.write_text("{ not json")
    r = grader.check(submission("good.py"), data=synthetic_npz, **shared_trainers,
                     tasks="fc", quick=True, reference=bad)
    notes = [n.message for n in r.notes if n.check == "reference"]
    assert len(notes) == 1 and f"The reference file {bad} cannot be read" in notes[0]
    assert r.task("fc").reference is None


# -- error kinds set where the error happens (issue 14) ----------------------------------
@pytest.mark.parametrize("name,tasks,task,kind", [
    ("import_error.py", "fc", "fc", "import"),
    ("missing_function.py", "fc,cnn", "cnn", "missing"),
    ("raises_in_builder.py", "fc,cnn", "fc", "exception"),
    ("exits_in_builder.py", "fc,cnn", "fc", "crash"),
])
def test_every_error_carries_its_kind(grade, name, tasks, task, kind):
    t = grade(name, tasks).task(task)
    assert t.status == ERROR and t.error_kind == kind, (t.error_kind, t.reason)


def test_a_grader_bug_in_one_task_costs_that_task_not_the_submission(
        shared_trainers, monkeypatch, synthetic_npz, submission, tmp_path):
    import grader.task_loop

    real = grader.task_loop.apply_reply

    def flaky(result, reply, *, task, **kw):
        if task.id == "fc":
            raise KeyError("predictions")
        return real(result, reply, task=task, **kw)

    monkeypatch.setattr(grader.task_loop, "apply_reply", flaky)
    r = grader.check(submission("good.py"), data=synthetic_npz, **shared_trainers,
                     tasks="fc,cnn", quick=True, out=tmp_path)
    fc, cnn = r.task("fc"), r.task("cnn")
    assert fc.status == ERROR and fc.error_kind == "grader" and fc.points == 0
    assert "a bug in the grader, not a verdict on your code" in fc.reason
    assert "KeyError" in fc.error["traceback"]
    assert cnn.status == CHECKED
    saved = load_results(tmp_path / "results.json")
    assert saved.task("fc").error_kind == "grader" and saved.options["quick"] is True


def test_an_interrupted_two_lane_run_keeps_only_finished_tasks(synthetic_npz, submission,
                                                                tmp_path, fast_rubric):
    """Ctrl-C (SIGINT, delivered to the main thread whichever lane is there: waiting on
    its child, or waiting for the other lane) stops the run at once; the other lane's task
    (a builder that never returns), cut short when its child is killed, is not written as
    an error that --resume would keep."""
    import signal
    import threading

    class Interrupt(grader.progress.GradeProgress):
        def task_finished(self, result):
            if result.id == "cnn":
                os.kill(os.getpid(), signal.SIGINT)

    started = time.monotonic()
    # Ctrl-C as a user's terminal sends it to a plain process, whatever handler an earlier
    # test in this worker left (in two clean-clone runs the SIGINT raised nothing here,
    # and the run went on to the hanging builder's time limit; alone it always raised).
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):  # one lane: cnn; the other: fc, which hangs
            grader.check(submission("hangs_in_builder.py"), data=synthetic_npz,
                         tasks="cnn,fc", quick=True, lanes=2, out=tmp_path,
                         progress=Interrupt(), rubric=fast_rubric(task_timeout_s=120))
    finally:
        signal.signal(signal.SIGINT, previous)
    assert time.monotonic() - started < 100  # stopped, not timed out
    for t in threading.enumerate():  # the other lane, ending as its child is killed
        if t.name.startswith("grader-lane"):
            t.join(timeout=60)
    path = tmp_path / "results.json"
    kept = json.loads(path.read_text())["tasks"] if path.exists() else []
    assert [t["id"] for t in kept if t["status"] != CHECKED] == [], kept
