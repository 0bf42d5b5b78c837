"""Fit a student's model under the budget.  Runs in the child process.

The student's configuration is kept: their optimizer (and learning-rate
schedule), their loss and label encoding, their batch size and epochs, shuffled
data order from the fixed seed.  The grader only adds an accuracy metric and
``steps_per_execution``, which runs several batches per call into the backend:
the same maths with less Python overhead.  Per-batch callbacks (the grader's
progress display) then run once per execution instead of once per batch.
"""
from __future__ import annotations

import contextlib
import math
import time

import numpy as np


def compile_for_grading(model, default_optimizer: str, default_loss: str,
                        steps_per_execution: int, num_classes: int = 10) -> dict:
    """Compile with the student's settings when they compiled, else the rubric's defaults."""
    from .describe import describe_loss, describe_optimizer, is_compiled

    compiled = is_compiled(model)
    if compiled:
        optimizer, loss, jit = model.optimizer, model.loss, getattr(model, "jit_compile", "auto")
    else:
        optimizer, loss, jit = default_optimizer, default_loss, "auto"
    loss_info = describe_loss(loss)
    if loss_info["encoding"] == "unsupported":
        raise ValueError(f"The loss {loss_info['name']!r} is for sequences or embeddings, not "
                         f"one class score per image, so it cannot train this classifier. Use "
                         f"'sparse_categorical_crossentropy' (integer labels) or "
                         f"'categorical_crossentropy' (one-hot labels).")
    if loss_info["encoding"] == "probe":
        loss_info["one_hot"], loss_info["encoding_note"] = probe_encoding(loss, num_classes)
    model.compile(optimizer=optimizer, loss=loss, metrics=["accuracy"],
                  steps_per_execution=steps_per_execution, jit_compile=jit)
    info = {"compiled_by": "student" if compiled else "grader",
            "optimizer": describe_optimizer(model.optimizer),
            "loss": loss_info, "steps_per_execution": steps_per_execution}
    return info


def probe_encoding(loss, num_classes: int) -> tuple[bool, str]:
    """Integer or one-hot labels for a custom loss, decided on one batch: the encoding that
    works is the one under which right predictions cost less than wrong ones.  With the
    wrong encoding a loss either raises (shapes) or, broadcast, cannot tell them apart.
    Returns (one_hot, a note for the results); raises ValueError naming each encoding tried
    and why it failed when none fits."""
    import keras

    fn = keras.losses.get(loss) if isinstance(loss, str) else loss
    n = 2 * num_classes
    y = np.arange(n) % num_classes
    right = np.full((n, num_classes), 0.1 / max(num_classes - 1, 1), dtype="float32")
    right[np.arange(n), y] = 0.9
    wrong = np.roll(right, 1, axis=1)
    margins, why = {}, {}
    for name, one_hot in (("integer", False), ("one-hot", True)):
        target = encode_labels(y, num_classes, one_hot)
        try:
            good = float(np.mean(keras.ops.convert_to_numpy(fn(target, right))))
            bad = float(np.mean(keras.ops.convert_to_numpy(fn(target, wrong))))
        except Exception as exc:
            why[name] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
            continue
        if not (math.isfinite(good) and math.isfinite(bad)):
            why[name] = "the loss is NaN or infinite"
        elif good < bad - 1e-6:
            margins[name] = (bad - good) / max(abs(bad), 1e-6)
        else:
            why[name] = (f"right predictions do not cost less than wrong ones "
                         f"({good:.4g} vs {bad:.4g})")
    if not margins:
        raise ValueError("Could not tell which labels the custom loss expects. Tried integer "
                         "class indices (" + why.get("integer", "?") + ") and one-hot vectors ("
                         + why.get("one-hot", "?") + "). A loss must take y_true as integer "
                         "labels of shape (batch,) or one-hot labels of shape (batch, "
                         f"{num_classes}) and give right predictions a lower loss than wrong "
                         f"ones.")
    best = max(margins, key=margins.get)
    note = f"custom loss: {best} labels, chosen by a one-batch probe"
    if len(margins) > 1:
        note += " (both encodings ran; this one separated right from wrong predictions more)"
    return best == "one-hot", note


def encode_labels(y: np.ndarray, num_classes: int, one_hot: bool) -> np.ndarray:
    if not one_hot:
        return y.astype("int32")
    out = np.zeros((len(y), num_classes), dtype="float32")
    out[np.arange(len(y)), y] = 1.0
    return out


def to_float(x: np.ndarray) -> np.ndarray:
    """uint8 images to float32 in [0, 1], as the submission contract promises."""
    return np.multiply(x, np.float32(1.0 / 255.0), dtype=np.float32)


def make_progress_callback(emit, task_id: str, epochs: int, steps: int, every_s: float = 0.5):
    import keras

    class Progress(keras.callbacks.Callback):
        """Streams epochs (and, throttled, batches) to the parent; stops on a NaN loss."""

        def __init__(self):
            super().__init__()
            self.history: dict[str, list[float]] = {}
            self.nan_at: dict | None = None
            self._last = 0.0
            self._epoch = 0
            # When each call into the backend ended: the first includes building the
            # training graph, the later ones are steady steps; from the last of an epoch
            # to its end is validation.  What a quick check's time estimate is made of.
            self.t0 = time.perf_counter()
            self.first: tuple[int, float] | None = None
            self.latest: tuple[int, float] | None = None
            self.val_s: list[float] = []

        def on_epoch_begin(self, epoch, logs=None):
            self._epoch = epoch

        def on_train_batch_end(self, batch, logs=None):
            mark = (self._epoch * steps + int(batch) + 1, time.perf_counter() - self.t0)
            self.first = self.first or mark
            self.latest = mark
            logs = logs or {}
            loss = logs.get("loss")
            if loss is not None and not math.isfinite(float(loss)):
                self.nan_at = {"epoch": self._epoch + 1, "batch": int(batch) + 1}
                self.model.stop_training = True
            now = time.monotonic()
            if now - self._last >= every_s:
                self._last = now
                emit({"ev": "batch", "task": task_id, "epoch": self._epoch + 1, "epochs": epochs,
                      "batch": int(batch) + 1, "steps": steps,
                      "logs": {k: float(v) for k, v in logs.items()}})

        def on_epoch_end(self, epoch, logs=None):
            if self.latest is not None:
                self.val_s.append(time.perf_counter() - self.t0 - self.latest[1])
            logs = {k: float(v) for k, v in (logs or {}).items()}
            for k, v in logs.items():
                self.history.setdefault(k, []).append(v)
            if self.nan_at is None and any(not math.isfinite(v) for v in logs.values()
                                           if v is not None):
                self.nan_at = {"epoch": epoch + 1, "batch": None}
                self.model.stop_training = True
            emit({"ev": "epoch", "task": task_id, "epoch": epoch + 1, "epochs": epochs,
                  "logs": logs})

    return Progress()


@contextlib.contextmanager
def kernel_only_determinism():
    """Yields the callbacks to add to ``fit`` or ``predict``: with TensorFlow's op
    determinism on, one that switches it off while keras starts each input pipeline and on
    again before any step; determinism is on again when the block ends, whatever happened.

    TensorFlow applies its ``make_deterministic`` tf.data rewrite to every input pipeline
    started under op determinism, and the rewrite copies the arrays the pipeline holds:
    1.2 s for the 45,000 training images on a 2-core CPU, against 0.03 s without (0.09 s
    for 4,500), once per ``fit``, plus the validation and test sets'.  The rewrite only
    orders parallel stages that run stateful functions; keras' pipeline for in-memory
    arrays has none (its one stateful function, the shuffle, runs in a sequential map), so
    its batches are the same either way.  Every kernel of every step still runs, and every
    graph is traced, with determinism on: the weights and predictions are the same to the
    bit (``tests/test_training.py``).  No callback on other backends, or when determinism
    is off or TensorFlow has no switch to turn it off."""
    import keras

    if keras.backend.backend() != "tensorflow":
        yield []
        return
    try:
        from tensorflow.python.framework import config as tf_config  # the switch-off is not
        off, on = tf_config.disable_op_determinism, tf_config.enable_op_determinism  # public
        enabled = tf_config.is_op_determinism_enabled()
    except (ImportError, AttributeError):
        enabled = False
    if not enabled:
        yield []
        return

    class KernelOnlyDeterminism(keras.callbacks.Callback):
        # keras starts an epoch's (or evaluation's, or prediction's) pipeline between the
        # "begin" hook and the first batch's.
        def pipeline_starts(self, *args, **kwargs):
            off()

        def steps_start(self, *args, **kwargs):
            on()

        on_epoch_begin = on_test_begin = on_predict_begin = pipeline_starts
        on_train_batch_begin = on_test_batch_begin = on_predict_batch_begin = steps_start
        on_epoch_end = on_test_end = on_predict_end = on_train_end = steps_start

    try:
        yield [KernelOnlyDeterminism()]
    finally:
        on()  # an error between the hooks must not leave it off


def build_training_state(model, x, y) -> None:
    """Create the optimizer's and the metrics' variables before ``fit``, as keras does on
    every backend but TensorFlow, where it defers them to the first trace of the training
    step; a ``tf.function`` that creates variables is traced twice, so this saves a whole
    trace of the training graph (about a second per model on a 2-core CPU).  The new
    variables start at zero either way: the training is the same to the bit.  Where it
    fails (a model keras cannot build symbolically), ``fit`` builds as it would have, and
    reports the error in its own place."""
    build = getattr(model, "_symbolic_build", None)  # keras 3's Trainer, every backend
    if build is None:
        return
    try:
        build(data_batch=(x, y, None))
    except Exception:
        pass


def fit(model, x_train, y_train, x_val, y_val, *, epochs: int, batch_size: int, emit,
        task_id: str) -> dict:
    """Train and report history, timing and a NaN stop, if any.  ``x_val`` None: no
    validation pass (a quick check, where building the validation graph would cost more
    than the pass tells)."""
    steps = math.ceil(len(x_train) / batch_size)
    progress = make_progress_callback(emit, task_id, epochs, steps)
    t0 = time.perf_counter()
    build_training_state(model, x_train[:batch_size], y_train[:batch_size])
    with kernel_only_determinism() as extra:
        model.fit(x_train, y_train, batch_size=batch_size, epochs=epochs,
                  validation_data=None if x_val is None else (x_val, y_val), shuffle=True,
                  verbose=0, callbacks=[progress] + extra)
    train_s = time.perf_counter() - t0
    timing = {}
    if progress.first is not None:
        (n1, t1), (n2, t2) = progress.first, progress.latest
        timing = {"first_steps": n1, "first_s": t1, "steady_steps": n2 - n1,
                  "steady_s": t2 - t1, "val_first_s": progress.val_s[0] if progress.val_s
                  else 0.0, "val_images": 0 if x_val is None else len(x_val),
                  "steps_per_epoch": steps}
    return {"history": progress.history, "train_s": train_s, "nan": progress.nan_at,
            "epochs_run": len(next(iter(progress.history.values()), [])), "timing": timing}


def predict(model, x: np.ndarray) -> np.ndarray:
    """The model's class scores for ``x``, 500 images a call, as float32."""
    with kernel_only_determinism() as extra:
        return np.asarray(model.predict(x, batch_size=500, verbose=0, callbacks=extra),
                          dtype="float32")
