"""``grader init``: a starter submission for a rubric, as a .py file or a notebook.

Every required function is there with a docstring that states the task, its
threshold and budget, and a small body that builds and trains, so the starter
itself passes ``grader check --quick``.
"""
from __future__ import annotations

from pathlib import Path

from . import atomic
from .errors import UsageError
from .rendering import render
from .rubric import Rubric, Task

_CONV = 'layers.Conv2D(16, 3, padding="same", activation="relu")'


def _layers(task: Task, rubric: Rubric) -> list[str]:
    """Skeleton layers that satisfy the task's structural rules."""
    required = set(task.require_layers)
    base = rubric.task(task.same_as) if task.same_as else task
    conv = "Conv2D" in required or "Conv2D" in base.require_layers
    out = []
    if conv:
        out.append(_CONV)
        if "BatchNormalization" in required:
            out.append("layers.BatchNormalization()")
        # Pooling by 4 keeps the starter CNN smaller than the starter FC model (Q5).
        out.append("layers.MaxPooling2D(4)")
        if "Dropout" in required:
            out.append("layers.Dropout(0.25)")
    out.append("layers.Flatten()")
    if not conv:
        if "BatchNormalization" in required:
            out.append("layers.BatchNormalization()")
        if "Dropout" in required:
            out.append("layers.Dropout(0.25)")
    return out


def _rules(task: Task) -> list[str]:
    rules = []
    if task.require_layers:
        rules.append(f"Must contain: {', '.join(task.require_layers)}.")
    if task.forbid_layers:
        rules.append("May not contain convolution or pooling layers."
                     if "Conv2D" in task.forbid_layers else
                     f"May not contain: {', '.join(task.forbid_layers)}.")
    if task.same_as:
        rules.append(f"Apart from {', '.join(task.same_as_ignoring)} layers, must be exactly "
                     f"your {task.same_as!r} model.")
    return rules


def render_py(rubric: Rubric, filename: str) -> str:
    tasks = [{"task": t, "layers": _layers(t, rubric), "rules": _rules(t)} for t in rubric.tasks]
    return render("starter.py.j2",
        rubric=rubric, tasks=tasks, filename=filename, shape=tuple(rubric.input_shape))


def render_notebook(rubric: Rubric, filename: str) -> str:
    """The same code as the .py starter, a cell per definition, behind a how-to cell."""
    import nbformat

    source = render_py(rubric, filename)
    doc_end = source.index('"""', 3) + 3
    intro, code = source[3:doc_end - 3], source[doc_end:].strip()
    chunks = [c.strip() for c in code.split("\n\n\n")]
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell(intro.strip()),
                nbformat.v4.new_code_cell(f"# Self-check in this notebook (about a minute):\n"
                                          f"# !pip install keras-lab-grader\n"
                                          f"!grader check {filename} --quick")]
    nb.cells += [nbformat.v4.new_code_cell(c) for c in chunks if c]
    return nbformat.writes(nb)


def write_starter(path: str | Path, rubric: Rubric, force: bool = False) -> Path:
    path = Path(path)
    if path.suffix not in (".py", ".ipynb"):
        raise UsageError(f"The starter must be a .py or .ipynb file. Received: {path.name}")
    if path.exists() and not force:
        raise UsageError(f"{path} exists already; not overwriting it.",
                         hint="Choose another name, or pass --force to replace it.")
    text = render_py(rubric, path.name) if path.suffix == ".py" else \
        render_notebook(rubric, path.name)
    return atomic.write_text(path, text)
