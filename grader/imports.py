"""What a submission's imports and free names mean for its tasks (parent side).

The child imports the extracted module with every import guarded (``notebook.py``) and
reports the ones that failed.  A failed import that no builder needs (``from
google.colab import files``, ``from sklearn.metrics import confusion_matrix`` used only
to plot) is a note; one a builder needs fails that task alone, with a message naming the
module and the fix: the Keras 3 replacement of a Keras 2 path, or how a course adds a
package to the grading environment.  Messages never show the grader's own paths.
"""
from __future__ import annotations

import re

from .results import Finding
from .rubric import Rubric, Task
from .submission import Submission, builder_arguments
from .notebook import unresolved_message

# Keras 2 modules that Keras 3 removed, and what to use instead.
KERAS2_PATHS = {
    "keras.utils.np_utils": "keras.utils.to_categorical",
    "keras.preprocessing.image": "keras.utils.load_img / img_to_array, and augmentation "
                                 "layers such as keras.layers.RandomFlip",
    "keras.preprocessing": "keras.utils (load_img, image_dataset_from_directory, "
                           "pad_sequences)",
    "keras.layers.core": "keras.layers",
    "keras.layers.regularization": "keras.layers",
    "keras.layers.reshaping": "keras.layers",
    "keras.layers.activation": "keras.layers",
    "keras.layers.merging": "keras.layers",
    "keras.layers.attention": "keras.layers",
    "keras.layers.rnn": "keras.layers",
    "keras.layers.convolutional": "keras.layers",
    "keras.layers.normalization": "keras.layers",
    "keras.layers.pooling": "keras.layers",
    "keras.layers.advanced_activations": "keras.layers",
    "keras.engine": "keras.Model and keras.layers.Layer",
    "keras.optimizers.legacy": "keras.optimizers",
    "keras.wrappers.scikit_learn": "the scikeras package",
    "keras.layers.experimental.preprocessing": "keras.layers",
    "tensorflow.keras.layers.experimental.preprocessing": "keras.layers",
}
# Keras 2 keyword arguments that Keras 3 refuses ("Argument(s) not recognized: {'lr': ...}"),
# and their Keras 3 names.
KERAS2_ARGUMENTS = {
    "lr": "learning_rate=",
    "decay": "a learning-rate schedule (learning_rate=keras.optimizers.schedules."
             "InverseTimeDecay(...) or ExponentialDecay(...))",
    "nb_epoch": "epochs=",
    "nb_filter": "filters=",
    "output_dim": "units=",
    "init": "kernel_initializer=",
    "W_regularizer": "kernel_regularizer=",
    "b_regularizer": "bias_regularizer=",
    "border_mode": "padding=",
    "subsample": "strides=",
    "dim_ordering": "data_format=",
}
_UNRECOGNISED = re.compile(r"(?:Argument\(s\) not recognized|Unrecognized keyword arguments?"
                           r"|unexpected keyword argument)[^{']*(\{[^}]*\}|'[^']+')")
_PATHS = re.compile(r"\s*\((?:/|[A-Za-z]:\\)[^)]*\)|(?:/[\w.+-]+){2,}")


def without_paths(text: str) -> str:
    """An import error's text without file system paths (they name the grader's machine)."""
    return _PATHS.sub("", text).strip()


def _builder_needs(sub: Submission, function: str) -> set[str]:
    return set(sub.notebook.needs.get(function, [])) if sub.notebook is not None else set()


def _failed(sub: Submission, imported: dict) -> list[tuple[dict, str]]:
    """The imports that failed, each with only the names no other import provides:
    Colab's autocomplete writes ``from keras.layers.regularization.dropout import
    Dropout`` beside a plain ``from keras.layers import Dropout``, and the name is there."""
    if sub.notebook is None:
        return []
    failed = {}
    for item in imported.get("failed_imports") or []:
        index = item.get("index")
        if isinstance(index, int) and 0 <= index < len(sub.notebook.imports):
            failed[index] = without_paths(str(item.get("error")))
    provided = {n for i, imp in enumerate(sub.notebook.imports) if i not in failed
                for n in imp["names"]}
    return [({**sub.notebook.imports[i],
              "names": [n for n in sub.notebook.imports[i]["names"] if n not in provided]},
             error) for i, error in sorted(failed.items())]


def _fix(module: str, error: str) -> str:
    for old, new in sorted(KERAS2_PATHS.items(), key=lambda kv: -len(kv[0])):
        if module == old or module.startswith(old + "."):
            return (f"`{module}` is a Keras 2 path that Keras 3 removed: use {new} "
                    f"instead.")
    missing = re.search(r"No module named '([^']+)'", error)
    if missing:
        top = missing.group(1).split(".")[0]
        return (f"The grading environment has no package `{top}`. Do without it in the "
                f"builder, or ask your course staff to add it (a course adds packages with "
                f"pip install in the grader's environment, or in setup.sh on Gradescope).")
    return "Check the name: it may be misspelled, or from another version of the library."


def needed_failed_import(sub: Submission, task: Task, imported: dict) -> str | None:
    """Why the task cannot run: an import its builder needs failed; None otherwise."""
    needs = _builder_needs(sub, task.function)
    for imp, error in _failed(sub, imported):
        used = sorted(set(imp["names"]) & needs)
        if used:
            where = sub.notebook.place(imp["cell"], imp["line"])
            return (f"{task.function} needs {', '.join(repr(u) for u in used)} from "
                    f"`{imp['code']}` ({where}), which cannot be imported here: {error}. "
                    + _fix(imp["module"], error))
    return None


def submission_notes(sub: Submission, rubric: Rubric, imported: dict) -> list[Finding]:
    """Notes on the submission as a whole: failed imports no builder needs (skipped), and
    names a builder (or a function it calls) uses that nothing defines."""
    if sub.notebook is None:
        return []
    callables = set(imported.get("callables") or [])
    builders = [t.function for t in rubric.tasks if t.function in callables]
    needed = set(builders)
    for b in builders:
        needed |= _builder_needs(sub, b)
    notes = []
    for imp, error in _failed(sub, imported):
        if not set(imp["names"]) & needed:
            notes.append(Finding("imports", False,
                                 f"`{imp['code']}` ({sub.notebook.place(imp['cell'], imp['line'])})"
                                 f" failed ({error}); no builder uses it, so it was skipped.",
                                 severity="info"))
    for item in sub.notebook.unresolved:
        if item["function"] in needed:
            message = unresolved_message(item, sub.notebook, builder_arguments(rubric))
            notes.append(Finding("notebook", False, message, severity="warning"))
    skipped = sub.notebook.training_skipped
    if skipped and imported.get("training") is None:
        notes.append(Finding(
            "training", False,
            f"`{skipped['code']}` ({sub.notebook.place(skipped['cell'], skipped['line'])}) "
            f"was not used: TRAINING must be written with literals (numbers, strings, "
            f"dicts, dict(...)), since the grader does not run the code around it. Every "
            f"task trains with the rubric's epochs and batch size.", severity="warning"))
    return notes


def keras2_argument_hint(message: object) -> str:
    """' Keras 3 names it learning_rate= (Keras 2 called it lr).' for an error that refuses
    a Keras 2 keyword argument; '' otherwise."""
    m = _UNRECOGNISED.search(str(message))
    if not m:
        return ""
    names = re.findall(r"'(\w+)'", m.group(1))
    hints = [f"{KERAS2_ARGUMENTS[n]} instead of {n}=" for n in names if n in KERAS2_ARGUMENTS]
    return (" This is a Keras 2 argument; Keras 3 takes " + "; ".join(hints) + ".") \
        if hints else ""
