"""Reading a submission file and the student's ``TRAINING`` requests.

The grader's process never executes the submission: it checks that the file
can be read, hashes it, and later validates what the child says the module
defines.
"""
from __future__ import annotations

import ast
import difflib
import hashlib
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from .errors import SubmissionError
from .notebook import Extracted, extract, wrap_hint
from .results import Finding
from .rubric import Rubric, Task

TRAINING_KEYS = ("epochs", "batch_size")


@dataclass(frozen=True)
class Submission:
    path: Path
    sha256: str
    notebook: Extracted | None = None

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def is_notebook(self) -> bool:
        return self.notebook is not None and self.notebook.kind == "notebook"

    def describe(self) -> dict:
        out = {"path": str(self.path), "name": self.name, "sha256": self.sha256,
               "kind": "notebook" if self.is_notebook else "python"}
        if self.notebook is not None:
            out["notebook" if self.is_notebook else "script"] = self.notebook.describe()
        return out

    def module_path(self, folder: Path) -> Path:
        """Copy what the child imports into its own ``folder`` (the only place of the
        student's it can see in a sandbox): the file, or the notebook's extracted code, and
        the modules beside it that the code imports (``from helpers import ...``), but
        nothing else from the submission's folder, which may hold other students' files."""
        source = self.notebook.source if self.notebook is not None else \
            self.path.read_text(encoding="utf-8")
        name = f"{self.path.stem}_ipynb.py" if self.is_notebook else self.path.name
        target = folder / name
        target.write_text(source, encoding="utf-8")
        for local in local_imports(source, self.path.parent):
            dest = folder / local.name
            if not dest.exists():
                if local.is_dir():
                    shutil.copytree(local, dest, ignore=shutil.ignore_patterns(
                        "__pycache__", ".*"))
                else:
                    shutil.copy2(local, dest)
        return target

    def where(self, line: int | None) -> str:
        """' (line N)' for a .py file, ' (cell N, In [k], line M)' for a notebook: lines of
        the student's own file and cells, not of the module the grader extracted."""
        if line is None:
            return ""
        if self.notebook is not None:
            return self.notebook.where(line)
        return f" (line {line})"


def local_imports(source: str, folder: Path) -> list[Path]:
    """Modules and packages in ``folder`` that ``source`` imports by top-level name."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module.split(".")[0])
    found = []
    for name in sorted(names):
        for candidate in (folder / f"{name}.py", folder / name):
            if candidate.is_file() or (candidate.is_dir() and
                                       (candidate / "__init__.py").is_file()):
                found.append(candidate)
                break
    return found


def load_submission(path: str | Path) -> Submission:
    path = Path(path).expanduser().resolve()
    if not path.exists():
        raise SubmissionError(f"Submission not found: {path}",
                              hint="Give the path of the student's .py file.")
    if path.is_dir():
        raise SubmissionError(f"{path} is a folder. Expected a .py file.",
                              hint="Give the path of one submission file.")
    if path.suffix not in (".py", ".ipynb"):
        raise SubmissionError(f"Expected a Python file (.py) or a notebook (.ipynb). "
                              f"Received: {path.name}",
                              hint="Grade the .py or .ipynb file that defines the builders.")
    try:
        raw = path.read_bytes()
        raw.decode("utf-8")
    except OSError as exc:
        raise SubmissionError(f"Cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise SubmissionError(f"{path.name} is not UTF-8 text: {exc}",
                              hint="Save the file with UTF-8 encoding.") from None
    # A .py file is read as a one-cell notebook: definitions taken, top-level work skipped.
    return Submission(path, hashlib.sha256(raw).hexdigest(), extract(path))


def expected_signature(task: Task, rubric: Rubric) -> str:
    shape = tuple(rubric.input_shape)
    return (f"def {task.function}(input_shape={shape}, num_classes={rubric.num_classes}): "
            f"... return model  # a keras.Model")


def missing_function_message(task: Task, rubric: Rubric, callables: list[str],
                             sub: Submission) -> str:
    msg = f"{task.function} is not defined in {sub.name}."
    # Never suggest renaming a function that another task requires.
    required = {t.function for t in rubric.tasks}
    candidates = [c for c in callables if c not in required]
    close = difflib.get_close_matches(task.function, candidates, n=1, cutoff=0.7)
    if close:
        msg += f" Did you mean to name {close[0]!r} {task.function!r}?"
    msg += f" Expected: {expected_signature(task, rubric)}"
    if sub.notebook is not None and sub.notebook.top_level_models:
        cell = matching_model_cell(task, rubric, sub.notebook.top_level_models)
        if cell is not None:
            where = sub.notebook.cell_name(cell) if sub.is_notebook else "the script"
            msg += " " + wrap_hint(task.function, where)
        else:
            msg += (" No top-level model in the " + ("notebook" if sub.is_notebook else
                                                     "script")
                    + f" looks like {task.question} ({task.title.lower()}), so the grader "
                      f"cannot say which one to wrap.")
    return msg


def matching_model_cell(task: Task, rubric: Rubric, models: list[dict]) -> int | None:
    """The top-level model cell that fits a task best: its question number in the
    markdown or code around it, the layers it must or may not have, the layers that mark
    another task; None when no cell fits better than by chance."""
    others = {layer for t in rubric.tasks if t.id != task.id for layer in t.require_layers}
    best, best_score = None, 0
    for m in models:
        text, layers = m.get("text", ""), set(m.get("layers", []))
        score = 0
        if re.search(rf"\b{re.escape(task.question)}\b", text):
            score += 4
        if any(re.search(rf"\b{re.escape(t.question)}\b", text) for t in rubric.tasks
               if t.id != task.id):
            score -= 2
        if task.require_layers:
            score += 2 if set(task.require_layers) <= layers else -3
        if layers & set(task.forbid_layers):
            score -= 5
        elif task.forbid_layers:
            score += 1
        score -= len((others - set(task.require_layers)) & layers)
        if re.search(rf"\b{re.escape(task.id)}\b", text, re.IGNORECASE):
            score += 1
        if score > best_score:
            best, best_score = m["cell"], score
    return best


def training_settings(task: Task, rubric: Rubric, training) -> tuple[int, int, list[Finding]]:
    """Epochs and batch size for a task: the student's request, else the rubric's defaults.

    A request over the budget is kept as requested (and fails the budget check);
    it is never trimmed silently.
    """
    epochs = task.epochs
    batch_size = task.batch_size or rubric.training.batch_size
    findings: list[Finding] = []
    req = (training or {}).get(task.id) if isinstance(training, dict) else None
    if req is None:
        return epochs, batch_size, findings
    if not isinstance(req, dict):
        findings.append(Finding("training", False,
                                f"TRAINING[{task.id!r}] must be a dict like "
                                f"{{'epochs': 10, 'batch_size': 64}}. Received: {req!r}"))
        return epochs, batch_size, findings
    for key in req:
        if key not in TRAINING_KEYS:
            close = difflib.get_close_matches(key, TRAINING_KEYS, n=1)
            findings.append(Finding("training", False,
                                    f"TRAINING[{task.id!r}] has an unknown key {key!r}"
                                    + (f": did you mean {close[0]!r}?" if close else
                                       f". Known keys: {', '.join(TRAINING_KEYS)}."),
                                    severity="warning"))
    for key in TRAINING_KEYS:
        if key in req:
            value = req[key]
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                findings.append(Finding("training", False,
                                        f"TRAINING[{task.id!r}][{key!r}] must be a positive "
                                        f"integer. Received: {value!r}"))
            elif key == "epochs":
                epochs = value
            else:
                batch_size = value
    return epochs, batch_size, findings


def training_table_findings(training, rubric: Rubric) -> list[Finding]:
    """Problems with TRAINING as a whole: not a dict, or keyed by a task that does not exist."""
    if training is None:
        return []
    if not isinstance(training, dict) or "__unreadable__" in training:
        received = training.get("__unreadable__") if isinstance(training, dict) else repr(training)
        return [Finding("training", False,
                        "TRAINING must be a dict keyed by task id, like "
                        "{'fc': {'epochs': 10, 'batch_size': 64}}; the defaults are used. "
                        f"Received: {received}", severity="warning")]
    out = []
    for key in training:
        if key not in rubric.task_ids:
            close = difflib.get_close_matches(key, rubric.task_ids, n=1)
            out.append(Finding("training", False,
                               f"TRAINING has a key {key!r} that is no task"
                               + (f": did you mean {close[0]!r}?" if close else
                                  f". Task ids: {', '.join(rubric.task_ids)}."),
                               severity="warning"))
    return out
