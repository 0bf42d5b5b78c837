"""The child's side: import the submission, build, describe, train, predict.

Student code runs only in this process.  It is started by ``sandbox.Child``
with two extra pipes (commands in, events out) and answers one command at a
time.  It never receives test labels: only the images it needs.  What it sends
back is data that the grader's process checks before use.
"""
from __future__ import annotations

import gc
import importlib.util
import inspect
import json
import os
import re
import sys
import time
import traceback

from .. import protocol

MAX_MESSAGE = 1500
RECHECK_IMAGES = 1000
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


def network_blocked() -> bool:
    """True when this process sees no network interface but loopback."""
    import socket
    try:
        return all(name == "lo" for _, name in socket.if_nameindex())
    except OSError:
        return False


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
    values) and are copied into the student's own model object, which keeps
    its class, so an overridden ``train_step`` still runs.  Where the model cannot be
    cloned (a layer without a usable config), every weight that sits beside its
    initializer is re-drawn from it instead.  The optimizer is rebuilt from its config:
    no state from training inside the builder survives.
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


class Worker:
    def __init__(self, evt_fd: int, commands):
        self.evt_fd = evt_fd
        self.commands = commands
        self.module = None
        self.path = ""
        self.audit = BuilderAudit()
        self._data: dict[str, tuple] = {}

    def emit(self, msg: dict) -> None:
        protocol.write(self.evt_fd, msg)

    # -- commands ---------------------------------------------------------
    def hello(self, confinement: dict | None = None) -> None:
        t0 = time.perf_counter()
        from .deferred import deferred_imports
        with deferred_imports():
            import keras  # noqa: F401  (timed: the start-up cost of every child)
        from .backend import backend_info
        info = backend_info()
        determinism = False
        if info["device"]["backend"] == "tensorflow":
            import tensorflow as tf
            tf.config.experimental.enable_op_determinism()
            determinism = True
        elif info["device"]["backend"] == "jax":
            determinism = info["device"]["kind"] == "cpu" or \
                "xla_gpu_deterministic_ops=true" in os.environ.get("XLA_FLAGS", "")
        # What the backend imported lives as long as the child.  keras' clear_session(),
        # run before every task, collects garbage in full, which walks all of it (about
        # 300,000 objects with TensorFlow: 0.14-0.2 s a task on a 2-core CPU); frozen, it
        # is skipped.  The submission is imported later: its objects are collected as
        # before.
        gc.freeze()
        self.emit({"ev": "hello", "pid": os.getpid(), "import_s": time.perf_counter() - t0,
                   "determinism": determinism, "network_blocked": network_blocked(),
                   "sandbox": confinement or {"kind": "none", "problem": None}, **info})

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

    def run_task(self, req: dict) -> None:
        import keras
        import numpy as np
        from .describe import describe_compile, describe_model
        from .training import compile_for_grading, encode_labels, fit, predict

        task_id = req["task"]
        out = {"ev": "result", "task": task_id, "ok": False, "stage": "build", "timings": {}}
        t0 = time.perf_counter()
        try:
            keras.backend.clear_session()
            keras.utils.set_random_seed(req["seed"])
            keras.config.set_dtype_policy(req.get("dtype_policy") or "float32")
            model = self.build(req)
            out["timings"]["build_s"] = time.perf_counter() - t0
            out["notebook_compile"] = self.apply_notebook_compile(req["function"], model)
            out["stage"] = "describe"
            out["description"] = describe_model(model)
            out["description"]["compile"] = describe_compile(model, req.get("optimizer"),
                                                             req.get("loss"))
            out["builder_events"] = list(self.audit.events)
            out["builder_writes"] = list(self.audit.escapes)
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
        except BaseException as exc:  # the student's code raised, at any stage
            out["error"] = student_error(exc, self.path)
        finally:
            out["timings"]["total_s"] = time.perf_counter() - t0
            self.emit(out)


    def next_command(self) -> dict:
        line = self.commands.readline()
        return json.loads(line) if line else {"op": "exit"}


def setup(config: dict) -> dict:
    """The child confines itself before anything else runs in it (and before keras starts
    threads): file-size and core limits, death with the grader, a network namespace with
    no interface, and the Landlock allow-list.  Returns what holds, for the hello."""
    import ctypes
    import resource

    mb = int(config.get("max_file_mb", 2048)) * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_FSIZE, (mb, mb))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    state = {"kind": config.get("sandbox", "none"), "problem": None}
    if not sys.platform.startswith("linux"):
        return state
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, 9, 0, 0, 0)  # PR_SET_PDEATHSIG, SIGKILL: die with the grader
    if config.get("block_network"):
        if libc.unshare(0x40000000) != 0:  # CLONE_NEWNET, as root
            libc.unshare(0x10000000 | 0x40000000)  # with a user namespace, unprivileged
    if config.get("landlock"):
        from .. import landlock
        rules = config["landlock"]
        try:
            # Its own /proc entry (the target of /proc/self), not other processes'.
            state["landlock"] = landlock.restrict(
                read=rules["read"] + rules.get("devices", []) + [f"/proc/{os.getpid()}"],
                execute=rules["execute"],
                read_write=rules["read_write"], list_dirs=config.get("list_dirs", []))
        except OSError as exc:
            state.update(kind="none", problem=f"Landlock could not be enforced: {exc}")
    return state


def main(argv: list[str]) -> int:
    cmd_fd, evt_fd = int(argv[1]), int(argv[2])
    confinement = setup(json.loads(argv[3]) if len(argv) > 3 else {})
    worker = Worker(evt_fd, os.fdopen(cmd_fd, "rb"))
    worker.hello(confinement)
    while True:
        msg = worker.next_command()
        op = msg.get("op")
        if op == "import":
            worker.import_submission(msg["path"])
        elif op == "task":
            worker.run_task(msg)
        elif op == "exit":
            break
    return 0


if __name__ == "__main__":
    sys.stdout.reconfigure(line_buffering=True)
    os._exit(main(sys.argv))  # skip interpreter teardown: a student's atexit hooks must not hang us
