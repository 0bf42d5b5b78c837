"""The builder: import the submission, call its model-building functions, export each
model as data.

Student code runs only in this process.  What it sends back is a claim: the grader's
process checks every message, and the models are trained by the trainer
(``trainer.py``) from the exported configuration, never here, except a model whose
configuration cannot cross (custom code), which is trained here the way it was before
and held for a TA.  It never receives test labels: only the images it needs.
"""
from __future__ import annotations

import importlib.util
import inspect
import json
import os
import sys
import time
import traceback

from .task import TaskRunner, clean_message

def student_error(exc: BaseException, path: str) -> dict:
    """The error as a student should read it: type, message, and only the frames in their file."""
    frames = []
    for fs in traceback.extract_tb(exc.__traceback__):
        if os.path.abspath(fs.filename) == path:
            frames.append({"line": fs.lineno, "function": fs.name, "code": (fs.line or "").strip()})
    if isinstance(exc, SyntaxError) and os.path.abspath(exc.filename or "") == path:
        frames.append({"line": exc.lineno, "function": "<module>",
                       "code": (exc.text or "").strip()})
    message = clean_message(str(exc))
    if isinstance(exc, SystemExit):
        message = f"the code called sys.exit({exc.code!r})"
    elif isinstance(exc, SyntaxError):
        message = exc.msg
    return {"type": type(exc).__name__, "message": message, "frames": frames[-5:]}


class BuilderAudit:
    """Notes what a builder does besides building: training, loading weights, reading files.

    The weights it sets are discarded anyway (the model is re-initialised before
    training); this is so the report can say what happened.
    """

    _SYSTEM = ("/proc", "/sys", "/dev", "/etc", "/usr", "/lib", sys.prefix, sys.base_prefix,
               os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

    def __init__(self):
        self.active = False
        self.events: list[str] = []
        self.escapes: list[str] = []
        self.workdir = os.getcwd()
        sys.addaudithook(self._hook)

    def _hook(self, event, args):
        if not self.active or event != "open" or not args:
            return
        path, mode, flags = (list(args) + [None, None])[:3]
        if isinstance(path, bytes):
            path = path.decode(errors="replace")
        if not isinstance(path, str) or path.endswith((".py", ".pyc", ".so")):
            return
        path = os.path.abspath(path)
        writes = (isinstance(mode, str) and any(c in mode for c in "wax+")) or \
            (isinstance(flags, int) and flags & (os.O_WRONLY | os.O_RDWR))
        inside = path.startswith(self.workdir + os.sep)
        if writes and not inside and len(self.escapes) < 20:
            self.escapes.append(path)
        elif not inside and not path.startswith(self._SYSTEM) and len(self.events) < 20:
            self.events.append(f"read {path}")

    def run(self, fn, kwargs):
        import keras

        originals = {name: getattr(keras.Model, name) for name in ("fit", "load_weights")}

        def spy(name):
            def wrapper(model, *a, **kw):
                self.events.append(f"called model.{name}()")
                return originals[name](model, *a, **kw)
            return wrapper

        self.events, self.escapes = [], []
        self.active = True
        for name in originals:
            setattr(keras.Model, name, spy(name))
        try:
            return fn(**kwargs)
        finally:
            self.active = False
            for name, original in originals.items():
                setattr(keras.Model, name, original)


def seed_states(model) -> dict[str, list[list[int]]]:
    """Where each random layer (Dropout, augmentation) starts its random stream, by layer
    name: drawn when the student's code built the layer, and kept when the builder trained,
    so the trainer starts from the same place and a seed trains as it did there."""
    import keras

    out = {}
    for layer in model._flatten_layers(include_self=False, recursive=True):
        states = [keras.ops.convert_to_numpy(g.state).astype("int64").tolist()
                  for g in getattr(layer, "_seed_generators", None) or []]
        if states:
            out[layer.name] = states
    return out


class Worker(TaskRunner):
    """The builder: imports the submission, builds each model and exports it as data; trains
    only a model whose configuration cannot cross to the trainer (``run_task``)."""

    def __init__(self, evt_fd: int, commands):
        super().__init__(evt_fd, commands)
        self.module = None
        self.path = ""
        self.audit = BuilderAudit()

    def handlers(self) -> dict:
        return {"import": lambda msg: self.import_submission(msg["path"]),
                "export": self.export, "task": self.run_task}

    def error(self, exc: BaseException) -> dict:
        return student_error(exc, self.path)

    def import_submission(self, path: str) -> None:
        self.path = os.path.abspath(path)
        t0 = time.perf_counter()
        # The folder the submission (and the sibling modules it imports) was copied into.
        sys.path.insert(0, os.path.dirname(self.path))
        try:
            spec = importlib.util.spec_from_file_location("submission", self.path)
            module = importlib.util.module_from_spec(spec)
            sys.modules["submission"] = module
            spec.loader.exec_module(module)
        except BaseException as exc:  # SystemExit and KeyboardInterrupt from student code too
            self.emit({"ev": "imported", "ok": False, "error": student_error(exc, self.path),
                       "import_s": time.perf_counter() - t0})
            return
        self.module = module
        callables = sorted(n for n, v in vars(module).items()
                           if callable(v) and not n.startswith("__"))
        training = getattr(module, "TRAINING", None)
        try:
            training = json.loads(json.dumps(training))
        except (TypeError, ValueError):
            training = {"__unreadable__": repr(training)[:200]}
        callables = [c for c in callables if not c.startswith("__grader_")]
        failed = [{"index": f.get("index"), "error": clean_message(str(f.get("error")))[:500]}
                  for f in getattr(module, "__grader_failed_imports__", None) or []
                  if isinstance(f, dict)]
        self.emit({"ev": "imported", "ok": True, "callables": callables, "training": training,
                   "failed_imports": failed, "import_s": time.perf_counter() - t0})

    def build(self, req: dict):
        import keras

        fn = getattr(self.module, req["function"])
        kwargs = {}
        try:
            params = inspect.signature(fn).parameters
            accepts_any = any(p.kind is p.VAR_KEYWORD for p in params.values())
            for key, value in (("input_shape", tuple(req["input_shape"])),
                               ("num_classes", req["num_classes"])):
                if key in params or accepts_any:
                    kwargs[key] = value
        except (TypeError, ValueError):
            pass
        model = self.audit.run(fn, kwargs)
        if not isinstance(model, keras.Model):
            kind = type(model)
            raise TypeError(f"{req['function']}() must return a keras.Model. Received: "
                            f"{kind.__module__}.{kind.__qualname__}"
                            + (" (a tf.keras / Keras 2 model: build it with `import keras`, "
                               "Keras 3)" if kind.__module__.startswith(("tf_keras", "tensorflow"))
                               else ""))
        if not model.built or not getattr(model, "inputs", None):
            try:
                model.build((None, *req["input_shape"]))
            except Exception:
                import numpy as np
                model(np.zeros((1, *req["input_shape"]), dtype="float32"))
        return model

    def apply_notebook_compile(self, function: str, model) -> dict | None:
        """A compile call that another cell applied to this builder's model: applied here,
        unless the builder compiled the model itself.  Says what happened."""
        apply = (getattr(self.module, "__grader_compiles__", None) or {}).get(function)
        if apply is None:
            return None
        from .describe import is_compiled
        if is_compiled(model):
            return {"applied": False, "builder_compiled": True,
                    "why": "the builder compiles the model itself"}
        try:
            apply(model)
        except Exception as exc:  # a name the compile call uses lives in a skipped cell
            return {"applied": False, "why": f"{type(exc).__name__}: "
                                             f"{clean_message(str(exc))[:300]}"}
        return {"applied": True}

    def make_model(self, req: dict, out: dict):
        """The student's model, as their function builds it (with a notebook's compile
        call applied), and what the builder did besides building."""
        model = self.build(req)
        out["notebook_compile"] = self.apply_notebook_compile(req["function"], model)
        out["builder_events"] = list(self.audit.events)
        out["builder_writes"] = list(self.audit.escapes)
        return model

    def export(self, req: dict) -> None:
        """Build the task's model and send it as data: its architecture (``to_json``), its
        compile settings (``get_compile_config``), the builder's own description of it (for
        the report only) and what the builder did.  ``cannot_export`` says why a model has
        no configuration keras can write."""
        from .describe import is_compiled

        out = {"ev": "exported", "task": req["task"], "ok": False, "stage": "build",
               "timings": {}}
        t0 = time.perf_counter()
        try:
            model = self.made_and_described(req, out, t0)
            out["stage"] = "export"
            try:
                out["architecture"] = json.loads(model.to_json())
                out["seed_states"] = seed_states(model)
                if is_compiled(model):
                    compile_config = json.loads(json.dumps(model.get_compile_config()))
                    compile_config["jit_compile"] = getattr(model, "jit_compile", "auto")
                    out["compile_config"] = compile_config
            except Exception as exc:  # a custom layer or model without a usable get_config
                out.pop("architecture", None)
                out["cannot_export"] = (f"keras could not write its configuration "
                                        f"({type(exc).__name__}: "
                                        f"{clean_message(str(exc)).splitlines()[0][:200]})")
            out["ok"] = True
        except BaseException as exc:  # the student's code raised while building
            out["error"] = student_error(exc, self.path)
        finally:
            out["timings"]["total_s"] = time.perf_counter() - t0
            self.emit(out)


if __name__ == "__main__":
    from .start import main
    main(sys.argv, Worker)
