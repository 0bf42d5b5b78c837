"""What the child sent back, turned into a ``TaskResult``: timings, findings about the
builder and the compile, the error with the student's own cell and line, the test
predictions (read with ``allow_pickle=False`` and checked), accuracy and confusion.
"""
from __future__ import annotations

import os
import stat
from typing import NamedTuple

import numpy as np

from . import checks
from .images import most_confident_mistakes
from .imports import keras2_argument_hint
from .results import ERROR, ErrorKind, Finding, Status, TaskResult
from .rubric import Rubric, Task
from .sandbox import Ended
from .submission import Submission


def import_failure(imported, sub: Submission, limit: float) -> tuple[str, dict | None]:
    """Why the submission did not import, in the student's terms, and the error (with
    frames mapped to the student's cells) when it raised."""
    name = sub.name
    if isinstance(imported, Ended):
        if imported.reason == "timeout":
            return (f"Importing {name} did not finish within {limit:.0f} s. Code at the top level "
                    f"of the file (an endless loop, or training a model outside a function) runs "
                    f"on import: move it into a function or under "
                    f"`if __name__ == \"__main__\":`."), None
        return f"Importing {name} stopped the process: {imported.message}.", None
    err, where = located_error(imported["error"], sub)
    return (f"{name} could not be imported: {err.get('type')}: {err.get('message')}"
            f"{where}" + keras2_argument_hint(err.get("message"))), err

_STAGES = {"build": "building the model", "describe": "inspecting the model",
           "export": "exporting the model's configuration",
           "rebuild": "rebuilding the model from its configuration",
           "compile": "compiling the model", "train": "training", "predict": "predicting"}


def located_error(err: dict, sub: Submission) -> tuple[dict, str]:
    """The error with its frames rewritten to the student's own cells and lines (not those
    of the extracted module), and ' (cell 3, In [13], line 5)' or ' (line 5)' for its last
    frame.  ``err`` itself is left as it is: an import failure is reported once per task
    from the same message, and mapping it twice would move its line."""
    frames = [dict(fr) for fr in err.get("frames") or [] if isinstance(fr, dict)]
    located = {**err, "frames": frames}
    if not frames:
        return located, ""
    line = frames[-1].get("line")
    where = sub.where(line if isinstance(line, int) else None)
    if sub.notebook is not None:
        for fr in frames:
            pos = sub.notebook.position(fr.get("line"))
            if pos is not None:
                fr["cell"] = pos[0] if sub.is_notebook else None
                fr["line"] = pos[1]
    return located, where


def name_error_hint(err: dict, sub: Submission) -> str:
    """The name a builder missed is set in a cell (or top-level code) the grader skipped."""
    if err.get("type") != "NameError" or sub.notebook is None:
        return ""
    for name, cell in sub.notebook.skipped_names.items():
        if f"'{name}'" in err.get("message", ""):
            where = (f"in {sub.notebook.cell_name(cell)}" if sub.is_notebook else
                     "in the script's top-level code")
            return (f" {name!r} is set {where}, which the grader does not run (it loads "
                    f"data, trains or plots): define it inside the function or "
                    + ("in a cell with only definitions" if sub.is_notebook else
                       "as a constant") + (", or use the input_shape argument"
                                           if name.lower().startswith("x_") else "") + ".")
    return ""


class TestSet(NamedTuple):
    """The test images and labels a run predicts, and the size of its validation set."""

    x: np.ndarray
    y: np.ndarray
    n_val: int


def apply_reply(result: TaskResult, reply: dict, *, task: Task, rubric: Rubric,
                sub: Submission, test: TestSet, quick: bool) -> None:
    """Fill ``result`` from the child's ``result`` message; the status stays PENDING for
    ``checks.decide`` unless the student's code raised (ERROR)."""
    x_test, y_test = test.x, test.y
    desc = reply.get("description")
    result.timings = {k: float(v) for k, v in reply.get("timings", {}).items()
                      if isinstance(v, (int, float))}
    result.compile = reply.get("compile")
    events = reply.get("builder_events") or []
    if events:
        result.findings.append(Finding(
            "builder", True, f"{task.function} did more than build the model: "
            f"{'; '.join(events)}. Weights set in the builder do not count: the grader "
            f"re-initialises every model and trains it under the budget.", severity="warning"))
    nbc = reply.get("notebook_compile")
    compile_call = sub.notebook.compiles.get(task.function) if sub.notebook else None
    if nbc is not None and compile_call is not None:
        where = sub.notebook.place(compile_call["cell"], compile_call["line"])
        if nbc["applied"]:
            result.findings.append(Finding(
                "compile", True, f"Compiled as in {where}: `{compile_call['code']}` (your "
                f"configuration, taken from the cell that compiles the model).",
                severity="info"))
        elif not nbc.get("builder_compiled"):
            result.findings.append(Finding(
                "compile", False, f"The compile call in {where} (`{compile_call['code']}`) "
                f"could not be used ({nbc.get('why')}), so the grader's default (Adam, "
                f"sparse categorical cross-entropy) was used instead. Compile inside "
                f"{task.function} to be sure yours is used.", severity="warning"))
    for part, what in (reply.get("reinit") or {}).items():
        if what != "fresh":
            result.findings.append(Finding(
                "reinitialise", False, f"Before training, the grader gives every model fresh "
                f"weights and a fresh optimizer; here the {part} {what}.", severity="warning"))
    writes = reply.get("builder_writes") or []
    if writes:
        result.findings.append(Finding(
            "sandbox", False, f"{task.function} wrote outside its working directory: "
            f"{', '.join(writes)}. A submission may only write files in the folder it runs in."))
    if desc:
        result.description = desc
        result.params_total = desc.get("params_total")
        result.params_trainable = desc.get("params_trainable")
    if not reply.get("ok"):
        err, at = located_error(reply.get("error") or {}, sub)
        result.error, result.error_kind = err, ErrorKind.EXCEPTION
        result.reason = (f"{task.function}: {err.get('type')} while "
                         f"{_STAGES.get(reply.get('stage'), reply.get('stage'))}{at}: "
                         f"{err.get('message')}" + name_error_hint(err, sub) +
                         keras2_argument_hint(err.get("message")))
        result.status = ERROR
        return
    result.history = reply.get("history") or {}
    result.epochs_run = reply.get("epochs_run")
    nan = reply.get("nan")
    if nan:
        at = f"epoch {nan['epoch']}" + (f", batch {nan['batch']}" if nan.get("batch") else "")
        result.findings.append(Finding(
            "nan_loss", False, f"The loss became NaN or infinite at {at}, so training stopped. "
                               f"A learning rate that is too high is the usual cause: lower it "
                               f"(for Adam, try 1e-3 or 1e-4)."))
    result.status = Status.PENDING  # decided by checks.decide from the findings and accuracy
    if "predictions" not in reply:  # built only: over budget, or a check failed before training
        return
    preds, problem = read_predictions(reply, len(y_test), rubric.num_classes)
    if problem:
        if not nan:  # after a NaN loss the predictions are NaN too: one finding says it
            result.findings.append(Finding("predictions", False,
                                           f"The model's test predictions are unusable: "
                                           f"{problem}."))
        return
    if quick:  # the predictions work; what they score after one epoch on a subset is no result
        return
    acc, cm, per_class = checks.accuracy_and_confusion(preds, y_test, rubric.num_classes)
    result.confusion_matrix, result.per_class_accuracy = cm, per_class
    result.misclassified = most_confident_mistakes(preds, y_test, x_test, rubric.class_names)
    result.test_accuracy = acc
    result.reinit_agreement = reinit_agreement(reply, preds, rubric.num_classes)
    result.findings += checks.review_findings(result, rubric, test.n_val, len(y_test))


def reinit_agreement(reply: dict, preds: np.ndarray, num_classes: int) -> float | None:
    """Share of the first test images on which the trained model and the same model
    re-initialised (the child's recheck) predict the same class."""
    if "predictions_reinit" not in reply:
        return None
    try:
        again = load_scores(reply["predictions_reinit"], len(preds), num_classes)
    except (OSError, ValueError):
        return 1.0  # the recheck was tampered with: treat as unchanged, for review
    n = len(again)
    if not n or not np.isfinite(again).all():
        return 1.0
    return float((again.argmax(axis=1) == preds[:n].argmax(axis=1)).mean())


def load_scores(path, max_rows: int, num_classes: int) -> np.ndarray:
    """A ``.npy`` file of class scores the child wrote, read without trusting it: opened
    once, never through a link and never blocking (a FIFO swapped in would hang the
    grader), a regular file whose header says float scores of at most ``max_rows`` rows
    and ``num_classes`` columns and whose size is exactly that (a header that claims
    10**11 rows is refused before anything is allocated), read from that one descriptor."""
    if not isinstance(path, str):
        raise ValueError("the predictions file is not named")
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as f:
        size = os.fstat(fd).st_size
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ValueError("the predictions file is not a regular file")
        version = np.lib.format.read_magic(f)
        read_header = {(1, 0): np.lib.format.read_array_header_1_0,
                       (2, 0): np.lib.format.read_array_header_2_0}.get(version)
        if read_header is None:
            raise ValueError(f"unknown .npy version {version}")
        shape, fortran, dtype = read_header(f)
        if dtype.kind != "f" or dtype.itemsize > 8 or dtype.hasobject:
            raise ValueError(f"predictions must be float scores. Received: dtype {dtype}")
        if len(shape) != 2 or shape[1] != num_classes or not 0 < shape[0] <= max_rows:
            raise ValueError(f"expected predictions of shape (n <= {max_rows}, "
                             f"{num_classes}). Received: {shape}")
        nbytes = shape[0] * shape[1] * dtype.itemsize
        if size - f.tell() != nbytes:
            raise ValueError(f"the predictions file holds {size - f.tell()} bytes of data "
                             f"for a {shape} array of {dtype} ({nbytes} bytes)")
        data = np.frombuffer(f.read(nbytes), dtype=dtype)
    return data.reshape(shape, order="F" if fortran else "C").copy()


def read_predictions(reply: dict, n: int, num_classes: int):
    """The child's test predictions, checked: (array, None) or (None, why not)."""
    try:
        preds = load_scores(reply.get("predictions"), n, num_classes)
    except (OSError, ValueError) as exc:
        return None, f"cannot read the predictions: {exc}"
    problem = checks.validate_predictions(preds, n, num_classes)
    return (None, problem) if problem else (preds, None)
