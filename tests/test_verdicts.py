"""Verdicts a TA can sign: quick runs give no grade, Q6 is never unchecked, failed seeds
count, thresholds are shown exactly, every keras loss gets the right labels.  Unit tests on
the grader's own functions: no child process, no training."""
from __future__ import annotations

import csv
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from grader import checks
from grader.batch import Row, write_grades
from grader.formats import gradescope, junit
from grader.results import (CHECKED, ERROR, FAILED, PASSED, SKIPPED, Finding, Results,
                            TaskResult, load_results, percent)
from grader.rubric import load_rubric

from conftest import REPO

DATA = REPO / "tests" / "data"


@pytest.fixture(scope="module")
def rubric():
    return load_rubric(None)


def _task(rubric, tid, **kw) -> TaskResult:
    t = rubric.task(tid)
    kw.setdefault("status", "pending")
    return TaskResult(t.id, t.question, t.title, t.function, reason="",
                      max_points=t.points, threshold=t.threshold, **kw)


def _quick(results: Results) -> Results:
    results.mode = "quick"
    for t in results.tasks:
        t.test_accuracy = None
    return results


# -- decide ------------------------------------------------------------------------------

def test_quick_runs_are_checked_never_passed_and_earn_nothing(rubric):
    r = _task(rubric, "fc", findings=[Finding("input_shape", True, "ok")])
    checks.decide(rubric.task("fc"), r, quick=True)
    assert r.status == CHECKED and r.points == 0.0
    assert "not a grade" in r.reason


def test_threshold_verdicts_and_exact_threshold_text(rubric):
    t = rubric.task("fc")
    above = _task(rubric, "fc", test_accuracy=0.4501)
    checks.decide(t, above, quick=False)
    assert above.status == PASSED and above.points == t.points
    below = _task(rubric, "fc", test_accuracy=0.4499)
    checks.decide(t, below, quick=False)
    assert below.status == FAILED and below.points == 0
    assert below.reason == "Test accuracy 44.99% is below the threshold of 45%."
    # A threshold of 62.5% is never rounded to "62%", so that 62.4% cannot read as a pass
    from dataclasses import replace
    t625 = replace(rubric.task("cnn"), threshold=0.625)
    r = _task(rubric, "cnn", test_accuracy=0.624)
    checks.decide(t625, r, quick=False)
    assert r.status == FAILED and "below the threshold of 62.5%" in r.reason
    assert percent(0.625) == "62.5%" and percent(0.62) == "62%" and percent(0.45) == "45%"


def test_a_failed_check_fails_whatever_the_accuracy(rubric):
    r = _task(rubric, "fc", test_accuracy=0.99,
              findings=[Finding("forbid_layers", False, "may not use Conv2D")])
    checks.decide(rubric.task("fc"), r, quick=False)
    assert r.status == FAILED and r.points == 0 and r.reason == "may not use Conv2D"


def test_an_error_earns_nothing(rubric):
    r = _task(rubric, "fc", test_accuracy=0.99)
    r.status = ERROR
    checks.decide(rubric.task("fc"), r, quick=False)
    assert r.status == ERROR and r.points == 0


def test_a_seed_that_did_not_finish_fails_the_task_and_is_named(rubric):
    runs = [{"seed": 0, "test_accuracy": 0.47}, {"seed": 1, "test_accuracy": 0.48},
            {"seed": 2, "error": "the loss became NaN at epoch 3"}]
    r = _task(rubric, "fc", test_accuracy=(0.47 + 0.48 + 0.0) / 3, runs=runs, borderline=True)
    checks.decide(rubric.task("fc"), r, quick=False)
    assert r.status == FAILED and r.points == 0
    assert "1 of 3 seeds did not finish" in r.reason
    assert "seed 2 failed: the loss became NaN at epoch 3" in r.reason
    assert "seed 0 47.00%" in r.reason and "seed 1 48.00%" in r.reason


# -- comparisons -------------------------------------------------------------------------

def test_q5_in_a_quick_run_compares_parameters_only_and_gives_no_points(rubric):
    comp = rubric.comparisons[0]
    tasks = {"cnn": _task(rubric, "cnn", params_total=100),
             "fc": _task(rubric, "fc", params_total=1000)}
    out = checks.compare(comp, tasks, quick=True)
    assert out.status == CHECKED and out.points == 0
    assert "parameters compared, accuracy not measured, no points" in out.reason
    tasks["cnn"].params_total = 5000
    assert checks.compare(comp, tasks, quick=True).status == FAILED


def test_q5_full_run(rubric):
    comp = rubric.comparisons[0]
    tasks = {"cnn": _task(rubric, "cnn", params_total=100, test_accuracy=0.6, status=PASSED),
             "fc": _task(rubric, "fc", params_total=1000, test_accuracy=0.5, status=PASSED)}
    out = checks.compare(comp, tasks, quick=False)
    assert out.status == PASSED and out.points == comp.points
    tasks["cnn"].test_accuracy = 0.5
    out = checks.compare(comp, tasks, quick=False)
    assert out.status == FAILED and out.points == 0 and "50.00% <= 50.00%" in out.reason
    tasks["cnn"].test_accuracy = None
    out = checks.compare(comp, tasks, quick=False)
    assert out.status == ERROR and "a test accuracy is missing" in out.reason
    assert checks.compare(comp, {"cnn": tasks["cnn"]}, quick=False).status == SKIPPED


# -- Q6 ----------------------------------------------------------------------------------

def _desc(layers, compile_info=None):
    return {"input_shape": [None, 32, 32, 3], "output_shape": [None, 10],
            "output_activation": "softmax", "params_total": 10, "params_trainable": 10,
            "layers": [{"index": i, "class_name": c, "config": cfg}
                       for i, (c, cfg) in enumerate(layers)],
            "compile": compile_info or {"compiled": False}}


CNN = [("Conv2D", {"filters": 8}), ("Flatten", {}), ("Dense", {"units": 10})]
CNN_DROPOUT = [("Conv2D", {"filters": 8}), ("Dropout", {"rate": 0.2}), ("Flatten", {}),
               ("Dense", {"units": 10})]


def test_q6_without_a_cnn_fails_and_says_why(rubric):
    task = rubric.task("cnn_dropout")
    found = checks.structure_findings(task, rubric, _desc(CNN_DROPOUT), None, None)
    same = [f for f in found if f.check == "same_as"][0]
    assert not same.ok and same.severity == "error"
    assert "Q6 cannot be checked" in same.message and "'cnn' model did not build" in \
        same.message
    r = _task(rubric, "cnn_dropout", findings=found, test_accuracy=0.9)
    checks.decide(task, r, quick=False)
    assert r.status == FAILED and r.points == 0


def test_q6_lists_every_training_difference(rubric):
    task = rubric.task("cnn_dropout")
    sgd = {"compiled": True, "optimizer": {"name": "SGD", "learning_rate": 0.05},
           "loss": {"name": "categorical_crossentropy", "from_logits": False}}
    adam = {"compiled": False, "default": {"optimizer": {"name": "Adam",
                                                         "learning_rate": 0.001},
                                           "loss": {"name": "sparse_categorical_crossentropy",
                                                    "from_logits": False}}}
    found = checks.structure_findings(task, rubric, _desc(CNN_DROPOUT, sgd), None,
                                      _desc(CNN, adam), {"epochs": 2, "batch_size": 64},
                                      {"epochs": 1, "batch_size": 32})
    by = {f.check: f for f in found}
    assert by["same_as"].ok
    msg = by["same_training"].message
    assert not by["same_training"].ok and by["same_training"].severity == "error"
    for part in ("optimizer Adam -> SGD", "loss sparse_categorical_crossentropy -> "
                 "categorical_crossentropy", "epochs 1 -> 2", "batch size 32 -> 64"):
        assert part in msg, msg
    same = checks.structure_findings(task, rubric, _desc(CNN_DROPOUT, adam), None,
                                     _desc(CNN, adam), {"epochs": 1, "batch_size": 32},
                                     {"epochs": 1, "batch_size": 32})
    assert {f.check: f for f in same}["same_training"].ok
    lr = dict(adam, default={**adam["default"], "optimizer": {"name": "Adam",
                                                               "learning_rate": 0.01}})
    changed = checks.structure_findings(task, rubric, _desc(CNN_DROPOUT, lr), None,
                                        _desc(CNN, adam), {}, {})
    assert "learning rate 0.001 -> 0.01" in {f.check: f for f in changed}["same_training"].message


# -- outputs of a quick run --------------------------------------------------------------

def test_quick_results_carry_no_points_in_any_output(tmp_path):
    r = _quick(load_results(DATA / "results_good.json"))
    for t in r.tasks:
        t.status, t.points = CHECKED, 0.0
    assert r.points is None and r.max_points is None and r.passed
    data = r.to_dict()
    assert data["points"] is None and data["max_points"] is None and data["mode"] == "quick"
    g = gradescope(r)
    assert g["score"] == 0 and "NOT A GRADE" in g["output"] and "leaderboard" not in g
    assert all("score" not in t and "max_score" not in t for t in g["tests"])
    suite = ET.fromstring(junit([("alice", r)])).find("testsuite")
    props = {p.get("name"): p.get("value") for p in suite.find("properties")}
    assert props == {"mode": "quick", "graded": "false", "points": "", "max_points": ""}
    row = Row("alice", "alice.py", "graded", None, None, True, mode="quick", folder="a",
              tasks={"fc": (CHECKED, None)})
    write_grades(tmp_path / "grades.csv", [row], ["fc"])
    line = list(csv.DictReader(open(tmp_path / "grades.csv")))[0]
    assert line["mode"] == "quick" and line["points"] == "" and line["max_points"] == ""
    assert line["status"] == "checked" and line["fc_verdict"] == "checked"
    from grader.html_report import render_report
    html = render_report(r)
    assert "Quick check only: not a grade." in html and "not graded" in html
    assert "/ 10" not in html


def test_full_results_keep_their_points():
    r = load_results(DATA / "results_good.json")
    assert r.points == 10 and r.max_points == 10
    g = gradescope(r)
    assert g["score"] == 10 and all("score" in t for t in g["tests"])


# -- describing models and losses (keras in this process, no training) --------------------

def test_nested_models_and_unserialisable_layers_are_described():
    import keras
    from keras import layers

    from grader.child.describe import describe_model

    class NoConfig(layers.Layer):
        def call(self, x):
            return x

        def get_config(self):
            raise NotImplementedError

    inp = keras.Input(shape=(32, 32, 3))
    features = keras.Sequential([layers.Flatten(), layers.Dense(8, activation="relu")])
    head = keras.Sequential([NoConfig(), layers.Dense(10, activation="softmax")])
    desc = describe_model(keras.Model(inp, head(features(inp))))
    assert desc["output_activation"] == "softmax" and desc["output_layer"] == "Dense"
    assert [l["class_name"] for l in desc["layers"]] == ["Flatten", "Dense", "NoConfig", "Dense"]
    assert desc["layers"][2]["config"] == {} and desc["output_shape"] == [None, 10]


def _builtin_losses():
    import keras
    names = [n for n in dir(keras.losses) if not n.startswith("_")
             and n not in ("Loss", "get", "serialize", "deserialize")]
    return names


def _keras_knows(name: str) -> bool:
    import keras
    try:
        keras.losses.get(name)
        return True
    except ValueError:
        return False


def test_every_keras_loss_has_a_known_encoding_that_keras_agrees_with():
    """The table in describe.py, checked against keras itself: under the table's encoding,
    right predictions cost less than wrong ones; and every built-in is in the table, by
    name and as an object."""
    import keras

    from grader.child.describe import describe_loss
    from grader.child.training import probe_encoding

    for name in _builtin_losses():
        obj = getattr(keras.losses, name)
        loss = obj() if isinstance(obj, type) else obj
        info = describe_loss(loss)
        assert info["encoding"] in ("integer", "one_hot", "unsupported"), (name, info)
        if not isinstance(obj, type) and _keras_knows(name):
            assert describe_loss(name)["encoding"] == info["encoding"], name
        if info["encoding"] == "unsupported" or not isinstance(obj, type):
            continue  # the function forms are the same maths (some need arguments)
        one_hot, _ = probe_encoding(loss, 10)
        assert one_hot == info["one_hot"], (name, info)
    for alias, canonical in (("mse", "one_hot"), ("kld", "one_hot"), ("mae", "one_hot")):
        assert describe_loss(alias)["encoding"] == canonical


def test_custom_losses_are_probed_and_a_misfit_is_explained():
    import keras

    from grader.child.describe import describe_loss
    from grader.child.training import probe_encoding

    def sparse(y_true, y_pred):
        return keras.losses.sparse_categorical_crossentropy(y_true, y_pred)

    def squared(y_true, y_pred):
        return keras.ops.mean(keras.ops.square(y_true - y_pred), axis=-1)

    def constant(y_true, y_pred):
        return keras.ops.zeros_like(y_pred[:, 0])

    assert describe_loss(sparse)["encoding"] == "probe"
    assert probe_encoding(sparse, 10)[0] is False
    assert probe_encoding(squared, 10)[0] is True
    with pytest.raises(ValueError) as err:
        probe_encoding(constant, 10)
    text = str(err.value)
    assert "Tried integer class indices" in text and "one-hot vectors" in text
    assert "right predictions do not cost less than wrong ones" in text


def test_reinitialise_reports_an_optimizer_it_could_not_rebuild():
    import keras
    from keras import layers

    from grader.child.task import reinitialise

    class Opaque(keras.optimizers.SGD):
        def get_config(self):
            raise RuntimeError("no config")

    model = keras.Sequential([keras.Input(shape=(4,)), layers.Dense(2)])
    model.compile(optimizer=Opaque(learning_rate=0.1), loss="mse")
    out = reinitialise(model)
    assert out["weights"] == "fresh"
    assert "could not be rebuilt from its config (RuntimeError)" in out["optimizer"]
    assert type(model.optimizer) is Opaque and int(model.optimizer.iterations.numpy()) == 0


def test_a_model_that_cannot_be_cloned_is_still_reinitialised():
    """A layer whose get_config raises stops cloning; its weights are re-drawn from their
    initializers all the same, so weights the builder set do not survive."""
    import keras
    from keras import layers

    from grader.child.task import reinitialise

    class NoConfig(layers.Layer):
        def call(self, x):
            return x

        def get_config(self):
            raise NotImplementedError

    model = keras.Sequential([keras.Input(shape=(4,)), NoConfig(), layers.Dense(3)])
    dense = model.layers[-1]
    dense.kernel.assign(np.full((4, 3), 7.0, dtype="float32"))
    out = reinitialise(model)
    assert out["weights"] == "fresh", out
    assert not np.any(dense.kernel.numpy() == 7.0)


def test_a_failed_seed_fails_a_task_without_a_threshold_too(rubric):
    """Q6 and Q8 have no threshold: with --seeds 3 and one crashed seed they used to pass."""
    runs = [{"seed": 0, "test_accuracy": 0.6}, {"seed": 1, "error": "crashed: killed by SIGSEGV"},
            {"seed": 2, "test_accuracy": 0.61}]
    r = _task(rubric, "cnn_batchnorm", test_accuracy=(0.6 + 0.61) / 3, runs=runs)
    checks.decide(rubric.task("cnn_batchnorm"), r, quick=False)
    assert r.status == FAILED and r.points == 0
    assert "1 of 3 seeds did not finish" in r.reason
    assert "seed 1 failed: crashed: killed by SIGSEGV" in r.reason


def test_q5_earns_nothing_from_a_held_or_failed_task(rubric):
    from grader.results import HELD

    comp = rubric.comparisons[0]
    tasks = {"cnn": _task(rubric, "cnn", params_total=100, test_accuracy=0.7, status=HELD),
             "fc": _task(rubric, "fc", params_total=1000, test_accuracy=0.5, status=PASSED)}
    out = checks.compare(comp, tasks, quick=False)
    assert out.status == HELD and out.points == 0 and "cnn is held for review" in out.reason
    tasks["cnn"].status, tasks["fc"].status = PASSED, ERROR
    out = checks.compare(comp, tasks, quick=False)
    assert out.status == FAILED and out.points == 0 and "fc did not pass (error)" in out.reason
    tasks["fc"].status = PASSED
    assert checks.compare(comp, tasks, quick=False).points == comp.points
