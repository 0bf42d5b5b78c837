"""The child's training helpers, in this process: what they change must not change a result."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from grader.child.training import build_training_state  # noqa: E402


def _model_and_data():
    keras.utils.set_random_seed(3)
    model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(4, 3),
                              keras.layers.Flatten(), keras.layers.Dropout(0.2),
                              keras.layers.Dense(10, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    rng = np.random.default_rng(0)
    return model, rng.random((64, 8, 8, 3), dtype=np.float32), rng.integers(0, 10, 64)


def _train(prebuild: bool) -> tuple[int, list[np.ndarray]]:
    keras.backend.clear_session()
    model, x, y = _model_and_data()
    traces = []
    step = model.train_step
    model.train_step = lambda data: traces.append(1) or step(data)
    if prebuild:
        build_training_state(model, x[:16], y[:16])
    model.fit(x, y, batch_size=16, epochs=2, verbose=0, shuffle=True)
    return len(traces), model.get_weights()


def test_building_the_training_state_first_saves_a_trace_and_changes_no_weight():
    once, weights = _train(prebuild=True)
    twice, plain = _train(prebuild=False)
    if keras.backend.backend() == "tensorflow":
        # Without it TensorFlow traces the step twice (it creates variables the first time).
        assert (once, twice) == (1, 2)
    assert all(np.array_equal(a, b) for a, b in zip(weights, plain, strict=True))


def test_a_model_that_cannot_be_built_symbolically_is_left_to_fit():
    class Broken(keras.Model):
        def call(self, x):
            raise RuntimeError("only when called")

    build_training_state(Broken(), np.zeros((2, 4), "float32"), np.zeros(2))  # no raise


def run_program(code: str) -> dict:
    """Run ``code`` in a fresh Python (TensorFlow's process-wide switches and garbage
    collector state stay out of this one) and return the JSON of its last line."""
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(run.stdout.strip().splitlines()[-1])


KERNEL_ONLY = r'''
import contextlib
import json
import numpy as np
import keras
import tensorflow as tf
from tensorflow.python.framework import config as tf_config
from grader.child import training

tf.config.experimental.enable_op_determinism()
offs = []
real_off = tf_config.disable_op_determinism
tf_config.disable_op_determinism = lambda: offs.append(1) or real_off()
rng = np.random.default_rng(0)
x, y = rng.random((96, 8, 8, 3), dtype=np.float32), rng.integers(0, 10, 96)


def run(guarded, fail=False):
    keras.backend.clear_session()
    keras.utils.set_random_seed(3)
    model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(4, 3),
                              keras.layers.Flatten(), keras.layers.Dropout(0.2),
                              keras.layers.Dense(10, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"], steps_per_execution=2)
    traced = []  # determinism as each graph was traced: it picks the loss's kernels
    for name in ("train_step", "test_step", "predict_step"):
        step = getattr(model, name)
        def spy(data, step=step):
            traced.append(tf_config.is_op_determinism_enabled())
            if fail:
                raise RuntimeError("the student's step failed")
            return step(data)
        setattr(model, name, spy)
    if not guarded:
        training.kernel_only_determinism = lambda: contextlib.nullcontext([])
    offs.clear()
    trained = training.fit(model, x[:64], y[:64], x[64:], y[64:], epochs=2, batch_size=16,
                           emit=lambda msg: None, task_id="t")
    preds = training.predict(model, x)
    return {"weights": [w.tolist() for w in model.get_weights()], "preds": preds.tolist(),
            "history": trained["history"], "traced": traced, "offs": len(offs),
            "after": tf_config.is_op_determinism_enabled()}


guarded = run(True)
guard = training.kernel_only_determinism
plain = run(False)
training.kernel_only_determinism = guard
try:
    run(True, fail=True)
except RuntimeError:
    pass
print(json.dumps({"guarded": guarded, "plain": plain,
                  "after_failure": tf_config.is_op_determinism_enabled()}))
'''


def test_input_pipelines_start_without_the_rewrite_and_change_no_bit():
    """Op determinism is off only while keras starts an input pipeline: every graph is
    traced and every step runs with it on, and the weights, history and predictions are
    those of a run that kept it on throughout."""
    if keras.backend.backend() != "tensorflow":
        pytest.skip("TensorFlow's switch; other backends have no input-pipeline rewrite")
    out = run_program(KERNEL_ONLY)
    guarded, plain = out["guarded"], out["plain"]
    # Two epochs and their validations, and the prediction: five pipelines started.
    assert guarded["offs"] == 5 and plain["offs"] == 0
    assert guarded["traced"] and all(guarded["traced"]) and all(plain["traced"])
    assert guarded["after"] and plain["after"] and out["after_failure"]
    for key in ("weights", "preds", "history"):
        assert guarded[key] == plain[key], key


FROZEN = r"""
import gc, json, os, time, weakref
from grader.child.start import hello
hello()
frozen = gc.get_freeze_count()
import keras
model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
model.compile(optimizer="adam", loss="mse")
gone = weakref.ref(model)
del model
t0 = time.perf_counter()
keras.backend.clear_session()
print(json.dumps({"frozen": frozen, "collected": gone() is None,
                  "clear_s": time.perf_counter() - t0, "tracked": len(gc.get_objects())}),
      flush=True)
os._exit(0)  # as the child does: TensorFlow may abort in the interpreter's teardown
"""


def test_the_backend_is_frozen_out_of_garbage_collection_and_models_are_not():
    """keras' clear_session() before every task collects garbage in full; what the child
    imported before the submission is frozen out of it, and a model the child drops is
    still collected."""
    out = run_program(FROZEN)
    assert out["frozen"] > 10_000 and out["tracked"] < out["frozen"] / 5, out
    assert out["collected"], out
