"""The grader trains what the student built: the student's code only builds and exports
each model; the grader's own process rebuilds it from keras' classes and trains it.  A
submission that patches the process it runs in, reports a budget it did not keep, or
hides a teacher in a custom class earns nothing it did not earn."""
from __future__ import annotations

import pytest

import grader
from grader.results import FAILED, HELD, PASSED


@pytest.fixture(scope="module")
def honest(synthetic_npz, tmp_path_factory):
    """good.py graded once: the plain models the attacks below are measured against."""
    from pathlib import Path
    sub = Path(__file__).parent / "submissions" / "good.py"
    return grader.check(sub, data=synthetic_npz, tasks="fc,cnn_dropout",
                        out=tmp_path_factory.mktemp("honest"))


@pytest.fixture
def run(synthetic_npz, submission, tmp_path, shared_trainers):
    def go(name, tasks="fc", **kwargs):
        return grader.check(submission(name), data=synthetic_npz, tasks=tasks, out=tmp_path,
                            **shared_trainers, **kwargs)
    return go


def _custom(task) -> str:
    found = [f for f in task.findings if f.check == "custom_code"]
    assert found, [f.message for f in task.findings]
    return found[0].message


def test_a_plain_model_is_trained_by_the_grader(honest):
    fc = honest.task("fc")
    assert fc.status == PASSED and not [f for f in fc.findings if f.check == "custom_code"]
    assert honest.environment["child_starts"] == 2  # the builder and one trainer


def test_replaced_handlers_and_a_forged_result_earn_nothing(run):
    fc = run("replaces_the_handlers.py").task("fc")
    assert fc.points == 0 and fc.status != PASSED, fc.reason
    assert "cannot be rebuilt from its configuration" in _custom(fc)


def test_a_budget_wrapped_in_the_students_process_is_the_budget(run, honest):
    fc = run("reports_its_budget.py").task("fc")
    assert fc.epochs_run == 3 and all(len(v) == 3 for v in fc.history.values())
    # the very training of the honest twin: nothing the builder patched reached it
    assert fc.history == honest.task("fc").history
    assert fc.test_accuracy == honest.task("fc").test_accuracy


def test_a_teacher_inside_a_custom_class_is_held_with_its_name(run):
    fc = run("teacher_inside.py").task("fc")
    assert fc.status in (HELD, FAILED) and fc.points == 0, fc.reason
    assert "custom class `Student`" in _custom(fc)


def test_a_teacher_dressed_as_keras_is_rebuilt_as_keras_and_trained_honestly(run, honest):
    fc = run("spoofed_teacher.py").task("fc")
    assert fc.history == honest.task("fc").history
    assert fc.test_accuracy == honest.task("fc").test_accuracy


def test_data_in_a_configuration_does_not_cross(run):
    fc = run("holds_data_in_its_config.py").task("fc")
    assert "a configuration carries architecture" in _custom(fc)
    assert fc.points == 0


def test_data_split_into_many_small_initializers_does_not_cross(run):
    """Each list within the limit, together 512 numbers: weights trained elsewhere would
    rebuild exactly from such pieces, so the total counts too."""
    fc = run("smuggles_weights_in_pieces.py").task("fc")
    assert "512 numbers in initializers" in _custom(fc)
    assert fc.status != PASSED and fc.points == 0


def test_the_trainer_trains_as_the_builder_did(run, honest):
    """A plain model and its twin in a custom class (trained where it is built, as every
    model once was) train the same, to the bit: results recorded before still hold."""
    twin = run("subclassed_twin.py", tasks="cnn_dropout").task("cnn_dropout")
    assert twin.status == HELD and "custom class `Mine`" in _custom(twin)
    assert twin.history == honest.task("cnn_dropout").history


def test_a_rubric_can_fail_custom_code(run, tmp_path):
    from grader.rubric import load_rubric
    import tomllib
    from pathlib import Path
    src = Path(load_rubric().path)
    text = src.read_text().replace('custom_code = "hold"', 'custom_code = "fail"')
    assert text != src.read_text()
    rubric = tmp_path / "rubric.toml"
    rubric.write_text(text)
    tomllib.loads(text)
    fc = run("teacher_inside.py", rubric=rubric).task("fc")
    assert fc.status == FAILED and fc.points == 0 and fc.test_accuracy is None
    assert 'custom_code = "fail"' in fc.reason


def test_a_class_shares_trainers_and_each_submission_trains_as_if_alone(
        synthetic_npz, submission, tmp_path, honest):
    """A trainer runs no student code, so a class batch keeps it from one submission to
    the next: each submission after the first starts only its builder, and trains to the
    bit as a submission graded alone (a hostile one between them changes nothing)."""
    import json
    import shutil

    from grader.batch import grade_batch

    folder = tmp_path / "class"
    folder.mkdir()
    for name, fixture in (("ann", "good.py"), ("bob", "replaces_the_handlers.py"),
                          ("cat", "good.py")):
        shutil.copy(submission(fixture), folder / f"{name}.py")
    rows = grade_batch([folder], tmp_path / "out", data=synthetic_npz, tasks="fc", jobs=1)
    assert [r.student for r in rows] == ["ann", "bob", "cat"]
    results = {r.student: json.loads((tmp_path / "out" / r.folder / "results.json")
                                     .read_text()) for r in rows}
    starts = [results[s]["environment"]["child_starts"] for s in ("ann", "bob", "cat")]
    assert starts[0] == 2 and starts[2] == 1, starts
    for student in ("ann", "cat"):
        fc = results[student]["tasks"][0]
        assert fc["history"] == honest.task("fc").history, student
        assert fc["test_accuracy"] == honest.task("fc").test_accuracy
