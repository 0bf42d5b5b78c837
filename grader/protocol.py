"""The line protocol between the grader's process and the child that runs student code.

Both directions are JSON objects, one a line, on two pipes that are not the
child's stdin, stdout or stderr, so that a student's ``print`` cannot be
mistaken for a message.  Large arrays (the test-set predictions) travel as
``.npy`` files in the child's working directory, read back with
``allow_pickle=False`` and checked before use.
"""
from __future__ import annotations

import json
import math
import os

MAX_LINE = 4 * 1024 * 1024  # a description of a very deep model is large, never this large
# Bounds on what a message may claim: far beyond any model of this lab, far below what
# would overflow a float or exhaust memory in the grader's process.
MAX_PARAMS = 10**12
MAX_LAYERS = 100_000
MAX_EPOCHS = 100_000
MAX_SECONDS = 10**7
MAX_TEXT = 200_000
# The messages that answer a command; progress messages ("batch", "epoch") come between.
ANSWERS = ("hello", "imported", "exported", "described", "result")


def encode(msg: dict) -> bytes:
    return (json.dumps(msg, allow_nan=True, default=repr) + "\n").encode()


def write(fd: int, msg: dict) -> None:
    data = encode(msg)
    while data:
        n = os.write(fd, data)
        data = data[n:]


class LineReader:
    """Splits a pipe's bytes into JSON messages; bounded so a flood cannot exhaust memory."""

    def __init__(self, fd: int):
        self.fd = fd
        self.buf = b""
        self.eof = False

    def feed(self) -> list[dict]:
        """Read what is available (call after select says readable); return whole messages."""
        chunk = os.read(self.fd, 1 << 16)
        if not chunk:
            self.eof = True
            return []
        self.buf += chunk
        out = []
        while b"\n" in self.buf:
            line, self.buf = self.buf.split(b"\n", 1)
            try:
                msg = json.loads(line)
            except (ValueError, RecursionError):  # RecursionError: a line of 100,000 "["
                continue  # not ours: the child's own protocol code never writes this
            if isinstance(msg, dict):
                out.append(msg)
        if len(self.buf) > MAX_LINE:
            self.buf = b""
        return out


# ---------------------------------------------------------------------------
# Checking what the child sends.  Student code runs in the child and can write
# to these pipes too, so every message the parent acts on is checked first;
# a malformed one ends the child's turn as a graded failure, never a crash.

def _num(v) -> bool:
    """A number; NaN and infinity included (a loss that diverged is a result)."""
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _count(v, top: int) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= top


def _text(v) -> bool:
    return isinstance(v, str) and len(v) <= MAX_TEXT


def _shape(v) -> bool:
    return v is None or (isinstance(v, list) and all(d is None or isinstance(d, int) for d in v))


def description_problem(d) -> str | None:
    if not isinstance(d, dict):
        return "the model description is not an object"
    layers = d.get("layers")
    if not isinstance(layers, list) or len(layers) > MAX_LAYERS or not all(
            isinstance(l, dict) and isinstance(l.get("class_name"), str)
            and isinstance(l.get("config", {}), dict) and isinstance(l.get("index"), int)
            for l in layers):
        return "the layer list is malformed"
    if not (_shape(d.get("input_shape")) and _shape(d.get("output_shape"))):
        return "a shape is malformed"
    total = d.get("params_total")
    if not (_count(total, MAX_PARAMS) and _count(d.get("params_trainable"), total)
            and (d.get("params_label_capacity") is None
                 or _count(d["params_label_capacity"], total))):
        return "the parameter counts are malformed (at most 10**12, trainable within the total)"
    if d.get("output_activation") is not None and not isinstance(d["output_activation"], str):
        return "the output activation is malformed"
    if not isinstance(d.get("compile", {}), dict):
        return "the compile settings are malformed"
    return None


def _history_problem(h) -> str | None:
    if not isinstance(h, dict) or len(h) > 100 or not all(
            isinstance(k, str) and isinstance(v, list) and len(v) <= MAX_EPOCHS
            and all(x is None or _num(x) for x in v) for k, v in h.items()):
        return "the training history is malformed"
    return None


def _error_problem(err) -> bool:
    """A student's error: type and message as text, frames with a line number each."""
    frames = err.get("frames", []) if isinstance(err, dict) else None
    return not (isinstance(err, dict) and _text(err.get("type", "")) and _text(err.get("message"))
                and isinstance(frames, list) and len(frames) <= 100
                and all(isinstance(f, dict) and (f.get("line") is None
                                                 or _count(f["line"], 10**7))
                        for f in frames))


def _builder_report_problem(msg: dict) -> str | None:
    """What the builder reports beside the model: its compile call, what it did, its error."""
    nbc = msg.get("notebook_compile")
    if nbc is not None and not (isinstance(nbc, dict) and isinstance(nbc.get("applied"), bool)):
        return "the compile report is malformed"
    for key in ("builder_events", "builder_writes"):
        if not isinstance(msg.get(key, []), list) or len(msg.get(key, [])) > 100 or not all(
                _text(x) for x in msg.get(key, [])):
            return f"{key} is malformed"
    err = msg.get("error")
    if err is not None and _error_problem(err):
        return "the error report is malformed"
    return None


def _export_problem(msg: dict) -> str | None:
    """An exported model: the architecture and compile settings as JSON objects (what they
    may hold is ``architecture.problems``'s to say), or why keras could not write them."""
    for key in ("architecture", "compile_config"):
        if msg.get(key) is not None and not isinstance(msg[key], dict):
            return f"the exported {key.replace('_', ' ')} is not an object"
    states = msg.get("seed_states", {})
    if not (isinstance(states, dict) and len(states) <= MAX_LAYERS and all(
            isinstance(k, str) and isinstance(v, list) and len(v) <= 10 and all(
                isinstance(s, list) and len(s) <= 4 and all(
                    isinstance(x, int) and not isinstance(x, bool) and abs(x) < 2**63
                    for x in s) for s in v) for k, v in states.items())):
        return "the random layers' seeds are malformed"
    if msg.get("cannot_export") is not None and not _text(msg["cannot_export"]):
        return "the export report is malformed"
    return _builder_report_problem(msg)


def message_problem(msg: dict, workdir: str, task: str | None = None) -> str | None:
    """Why the parent must not use ``msg``, or None."""
    ev = msg.get("ev")
    if task is not None and ev in ("described", "result", "exported") and \
            msg.get("task") != task:
        return f"it answers for task {msg.get('task')!r}, not {task!r}"
    if ev == "described":
        return description_problem(msg.get("description"))
    if ev in ("result", "exported"):
        if not isinstance(msg.get("ok"), bool) or not isinstance(msg.get("stage"), str):
            return "the result has no ok/stage"
        if not isinstance(msg.get("timings", {}), dict) or not all(
                _num(v) and math.isfinite(v) and 0 <= v <= MAX_SECONDS
                for v in msg.get("timings", {}).values()):
            return "the timings are malformed"
        if "description" in msg and (p := description_problem(msg["description"])):
            return p
        if ev == "exported":
            return _export_problem(msg)
        if "history" in msg and (p := _history_problem(msg["history"])):
            return p
        nan = msg.get("nan")
        if nan is not None and not (isinstance(nan, dict) and _count(nan.get("epoch"), MAX_EPOCHS)
                                    and (nan.get("batch") is None
                                         or _count(nan["batch"], 10**9))):
            return "the NaN report is malformed"
        if msg.get("epochs_run") is not None and not _count(msg["epochs_run"], MAX_EPOCHS):
            return "the epoch count is malformed"
        if msg.get("cannot_rebuild") is not None and not _text(msg["cannot_rebuild"]):
            return "the rebuild report is malformed"
        reinit = msg.get("reinit")
        if reinit is not None and not (isinstance(reinit, dict) and all(
                isinstance(k, str) and isinstance(v, str) for k, v in reinit.items())):
            return "the re-initialisation report is malformed"
        for key in ("predictions", "predictions_reinit"):
            if key in msg:
                path = msg[key]
                real = os.path.realpath(path) if isinstance(path, str) else ""
                if not real.startswith(os.path.realpath(workdir) + os.sep) or \
                        not os.path.isfile(real):
                    return "the predictions file is not in the submission's working folder"
        if (p := _builder_report_problem(msg)):
            return p
        if not isinstance(msg.get("compile", {}) or {}, dict):
            return "the compile settings are malformed"
        return None
    if ev == "imported":
        if msg.get("ok") is True:
            calls = msg.get("callables")
            if not isinstance(calls, list) or not all(isinstance(c, str) for c in calls):
                return "the list of functions is malformed"
            failed = msg.get("failed_imports", [])
            if not isinstance(failed, list) or not all(
                    isinstance(f, dict) and isinstance(f.get("index"), int)
                    and isinstance(f.get("error"), str) for f in failed):
                return "the list of failed imports is malformed"
        elif _error_problem(msg.get("error")):
            return "the import error is malformed"
        return None
    if ev in ("batch", "epoch"):
        logs = msg.get("logs")
        if not isinstance(logs, dict) or len(logs) > 100 or \
                not all(_num(v) for v in logs.values()) or \
                not _count(msg.get("epoch"), MAX_EPOCHS) or \
                not _count(msg.get("epochs"), MAX_EPOCHS):
            return "a progress message is malformed"
        if ev == "batch" and not (_count(msg.get("batch"), 10**9) and
                                  _count(msg.get("steps"), 10**9) and msg["steps"] > 0):
            return "a progress message is malformed"
        return None
    if ev == "hello":
        sandbox = msg.get("sandbox")
        if not (isinstance(msg.get("device"), dict) and isinstance(msg.get("versions"), dict)
                and isinstance(msg.get("determinism"), bool)
                and isinstance(msg.get("network_blocked"), bool)
                and isinstance(sandbox, dict) and sandbox.get("kind") in
                ("bubblewrap", "landlock", "none")):
            return "the start-up message is malformed"
    return None
