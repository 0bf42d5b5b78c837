"""The child's training helpers, in this process: what they change must not change a result."""
from __future__ import annotations

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
