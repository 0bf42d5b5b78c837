"""One task in a child: make the model, describe it, wait for the grader's go, give it
fresh weights and optimizer, compile, train under the budget, predict, re-check.

Both children run it.  The trainer makes the model by rebuilding the builder's exported
configuration (``trainer.py``); the builder makes it by calling the student's function,
and trains it only where the configuration cannot cross (custom code, held for a TA).
"""
from __future__ import annotations

import abc
import os
import re
import time

from .start import Served

RECHECK_IMAGES = 1000
MAX_MESSAGE = 1500
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_TRACE_LINE = re.compile(r'^\s*(File "|Detected at node|defined at \(most recent call last\)|'
                         r'\[\[\{\{node)')


def clean_message(message: str) -> str:
    """Keep what a student can act on: no colour codes, no TensorFlow graph stack dumps."""
    lines = [l.rstrip() for l in _ANSI.sub("", message).splitlines()]
    lines = [l for l in lines if l.strip() and not _TRACE_LINE.match(l)]
    text = "\n".join(lines)
    if len(text) > MAX_MESSAGE:
        text = text[:MAX_MESSAGE // 3] + "\n...\n" + text[-2 * MAX_MESSAGE // 3:]
    return text


def _reinitialise_by_initializers(model) -> list[str]:
    """Re-draw every variable that a layer keeps beside its initializer (``kernel`` and
    ``kernel_initializer``, ``moving_mean`` and ``moving_mean_initializer``...).  Returns the
    paths of the weights this did not reach."""
    import keras

    done = set()
    for layer in model._flatten_layers(include_self=False, recursive=True):
        for attr, init in list(vars(layer).items()):
            if not attr.endswith("_initializer") or init is None:
                continue
            var = getattr(layer, attr[:-len("_initializer")], None)
            if isinstance(var, keras.Variable):
                var.assign(keras.initializers.get(init)(var.shape, dtype=var.dtype))
                done.add(id(var))
    return [getattr(w, "path", w.name) for w in model.weights if id(w) not in done]


def reinitialise(model) -> dict:
    """Fresh weights for the architecture: whatever weights the builder set are gone.

    The fresh values come from a clone of the model (new layers, new initial
    values) and are copied into the model object, which keeps its class, so an
    overridden ``train_step`` still runs.  Where the model cannot be cloned (a layer
    without a usable config), every weight that sits beside its initializer is re-drawn
    from it instead.  The optimizer is rebuilt from its config: no state from training
    inside the builder survives.
    Returns what happened: ``weights`` and ``optimizer`` are "fresh", or say why not.
    """
    import keras

    out = {"weights": "fresh", "optimizer": "fresh"}
    compiled = getattr(model, "compiled", False)
    try:
        # clone_model also copies the compile settings, which need not serialise; the
        # optimizer is rebuilt below on its own.
        model.compiled = False
        fresh = keras.models.clone_model(model)
        model.set_weights(fresh.get_weights())
    except Exception as exc:  # a layer without get_config, a subclassed model
        try:
            missed = _reinitialise_by_initializers(model)
        except Exception as inner:
            missed = [f"all ({type(inner).__name__})"]
        if missed:
            out["weights"] = (f"could not all be re-initialised (cloning failed with "
                              f"{type(exc).__name__}); these kept the values the builder left: "
                              f"{', '.join(missed[:8])}" + (" ..." if len(missed) > 8 else ""))
    finally:
        model.compiled = compiled
    optimizer = getattr(model, "optimizer", None)
    if compiled and getattr(model, "loss", None) is not None:
        try:
            optimizer = type(optimizer).from_config(optimizer.get_config())
        except Exception as exc:
            # The old optimizer's slots (momentum, Adam's moments) would carry over state
            # from training in the builder: a default optimizer of the same class does not.
            try:
                optimizer = type(optimizer)()
                out["optimizer"] = (f"could not be rebuilt from its config "
                                    f"({type(exc).__name__}); a {type(optimizer).__name__} with "
                                    f"default settings was used instead")
            except Exception:
                optimizer = "adam"
                out["optimizer"] = (f"could not be rebuilt ({type(exc).__name__}); Adam with "
                                    f"default settings was used instead")
        model.compile(optimizer=optimizer, loss=model.loss,
                      jit_compile=getattr(model, "jit_compile", "auto"))
    return out


class TaskRunner(Served, abc.ABC):
    """A child that runs tasks: subclasses say how a model is made (``make_model``) and how
    an error reads (``error``)."""

    def __init__(self, evt_fd: int, commands):
        super().__init__(evt_fd, commands)
        self._data: dict[str, tuple] = {}

    @abc.abstractmethod
    def make_model(self, req: dict, out: dict):
        """The task's keras model; what happened on the way goes into ``out``."""

    @abc.abstractmethod
    def error(self, exc: BaseException) -> dict:
        """``exc`` as the grader's process reads it: type, message, frames."""

    def data(self, folder: str):
        if folder not in self._data:
            import numpy as np
            from .training import to_float

            def load(name):
                return np.load(os.path.join(folder, name + ".npy"), mmap_mode="r",
                               allow_pickle=False)

            self._data = {folder: (to_float(load("x_train")), np.asarray(load("y_train")),
                                   to_float(load("x_val")), np.asarray(load("y_val")),
                                   to_float(load("x_test")))}
        return self._data[folder]

    def made_and_described(self, req: dict, out: dict, t0: float):
        """The task's model, made from a clean keras state under its seed, and its
        description in ``out``."""
        import keras
        from .describe import describe_compile, describe_model

        keras.backend.clear_session()
        keras.utils.set_random_seed(req["seed"])
        keras.config.set_dtype_policy(req.get("dtype_policy") or "float32")
        model = self.make_model(req, out)
        out["timings"]["build_s"] = time.perf_counter() - t0
        out["stage"] = "describe"
        out["description"] = describe_model(model)
        out["description"]["compile"] = describe_compile(model, req.get("optimizer"),
                                                         req.get("loss"))
        return model

    def run_task(self, req: dict) -> None:
        import numpy as np
        from .training import compile_for_grading, encode_labels, fit, predict

        task_id = req["task"]
        out = {"ev": "result", "task": task_id, "ok": False, "stage": "build", "timings": {}}
        t0 = time.perf_counter()
        try:
            model = self.made_and_described(req, out, t0)
            if req.get("train", True):
                # The grader's process checks the structure first: a model that fails it is
                # not worth minutes of training.
                self.emit({"ev": "described", "task": task_id,
                           "description": out["description"]})
                go = self.next_command()
                if go.get("op") != "train":
                    req["train"] = False
            if not req.get("train", True):
                out["ok"] = True
                return
            out["stage"] = "compile"
            out["reinit"] = reinitialise(model)
            out["compile"] = compile_for_grading(model, req["optimizer"], req["loss"],
                                                 req["steps_per_execution"], req["num_classes"])
            x_train, y_train, x_val, y_val, x_test = self.data(req["data"])
            one_hot = out["compile"]["loss"]["one_hot"]
            out["stage"] = "train"
            val = (x_val, encode_labels(y_val, req["num_classes"], one_hot)) \
                if req.get("validate", True) else (None, None)
            trained = fit(model, x_train, encode_labels(y_train, req["num_classes"], one_hot),
                          *val, epochs=req["epochs"], batch_size=req["batch_size"], emit=self.emit,
                          task_id=task_id)
            out["history"], out["nan"] = trained["history"], trained["nan"]
            out["timings"]["train_s"] = trained["train_s"]
            out["timings"].update(trained["timing"])
            out["epochs_run"] = trained["epochs_run"]
            out["stage"] = "predict"
            # One batch per call: keras unrolls a multi-batch prediction call into a copy of
            # the forward graph per batch (20 for the test set), traced anew; the
            # predictions are the same either way.
            model.steps_per_execution, model.predict_function = 1, None
            t1 = time.perf_counter()
            preds = predict(model, x_test)
            out["timings"]["predict_s"] = time.perf_counter() - t1
            pred_file = os.path.join(os.getcwd(), f"predictions-{task_id}.npy")
            np.save(pred_file, preds, allow_pickle=False)
            out["predictions"] = pred_file
            if req.get("recheck"):
                # The same model with fresh weights, on the first images: its answers must
                # change, or they never came from the trained weights (the parent compares).
                out["stage"] = "recheck"
                reinitialise(model)
                n = min(len(x_test), RECHECK_IMAGES)
                again = predict(model, x_test[:n])
                again_file = os.path.join(os.getcwd(), f"predictions-reinit-{task_id}.npy")
                np.save(again_file, again, allow_pickle=False)
                out["predictions_reinit"] = again_file
            out["ok"] = True
        except BaseException as exc:  # the student's code (or their model) raised, at any stage
            out["error"] = self.error(exc)
        finally:
            out["timings"]["total_s"] = time.perf_counter() - t0
            self.emit(out)
