"""Reading a submission file and the student's ``TRAINING`` requests.

The grader's process never executes the submission: it checks that the file
can be read, hashes it, and later validates what the child says the module
defines.
"""
from __future__ import annotations

import ast
import difflib
import hashlib
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path

from .errors import SubmissionError
from .notebook import Extracted, extract, wrap_hint
from .results import Finding
from .rubric import Rubric, Task

TRAINING_KEYS = ("epochs", "batch_size")
# What the modules beside a submission may weigh in all: source code, not data.
MAX_SIBLING_BYTES = 16 * 2**20


@dataclass(frozen=True)
class Submission:
    path: Path
    sha256: str
    notebook: Extracted | None = None
    # The modules beside the file that its code imports, by path relative to its folder:
    # read once, here, never through a link that leads out of the folder.
    siblings: dict[str, bytes] = field(default_factory=dict)

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
        name = f"{self.path.stem}_ipynb.py" if self.is_notebook else self.path.name
        target = folder / name
        target.write_text(self.source, encoding="utf-8")
        for rel, data in self.siblings.items():
            dest = folder / rel
            if dest == target or dest.exists():
                continue
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(data)
        return target

    @property
    def source(self) -> str:
        """The code the child imports: the file, or what the grader took from its cells."""
        return self.notebook.source if self.notebook is not None else \
            self.path.read_text(encoding="utf-8")

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


def inside(path: Path, folder: Path) -> bool:
    """Whether ``path``, every link followed, is ``folder`` or lies in it."""
    real, folder = Path(os.path.realpath(path)), Path(os.path.realpath(folder))
    return real == folder or folder in real.parents


def _read_inside(path: Path, folder: Path) -> bytes:
    """A file of the submission's ``folder``: refused when it is, or passes through, a link
    that leads out of the folder (a link to the grader's data would carry the test labels
    into the sandbox), or when it is not a regular file."""
    rel = path.relative_to(folder)
    if not inside(path, folder):
        raise SubmissionError(f"{rel} is a symbolic link that leads outside the submission's "
                              f"folder; the grader does not follow it.",
                              hint="Hand in the file itself, not a link to it.")
    try:
        fd = os.open(os.path.realpath(path), os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as exc:
        raise SubmissionError(f"Cannot read {rel}: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            raise SubmissionError(f"{rel} is not a regular file.",
                                  hint="Hand in Python files only.")
        return f.read(MAX_SIBLING_BYTES + 1)


def sibling_files(source: str, folder: Path) -> dict[str, bytes]:
    """The modules and packages in ``folder`` that ``source`` imports, by relative path.
    Links that stay inside the folder are read; links that leave it are refused by name."""
    folder = Path(os.path.realpath(folder))
    files: dict[str, bytes] = {}
    for local in local_imports(source, folder):
        if local.is_dir():
            if not inside(local, folder):
                _read_inside(local, folder)  # raises: names the link
            for top, dirs, names in os.walk(local):
                dirs[:] = sorted(d for d in dirs if not d.startswith(".")
                                 and d != "__pycache__")
                for d in dirs:
                    if not inside(Path(top, d), folder):
                        _read_inside(Path(top, d), folder)
                for n in sorted(names):
                    if not n.startswith("."):
                        f = Path(top, n)
                        files[f.relative_to(folder).as_posix()] = _read_inside(f, folder)
        else:
            files[local.name] = _read_inside(local, folder)
        if sum(map(len, files.values())) > MAX_SIBLING_BYTES:
            raise SubmissionError(
                f"The modules beside the submission that it imports weigh more than "
                f"{MAX_SIBLING_BYTES // 2**20} MiB ({local.name}).",
                hint="Hand in source code; data files are not read.")
    return files


SUFFIXES = (".py", ".ipynb")
# Which file of a folder is the submission, when it holds several: these names first.
PREFERRED = ("lab", "submission", "main", "solution")
# Folders of copies, not of the student's work: macOS' zip metadata, caches.
NOT_WORK = ("__MACOSX", "__pycache__")


def candidates(folder: Path) -> list[Path]:
    """The .py and .ipynb files under ``folder`` that can be the submission: none in a
    hidden folder (``.ipynb_checkpoints``) or in a folder of copies (``__MACOSX``), no
    hidden file, and no folder entered through a link."""
    found = []
    for top, dirs, names in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in NOT_WORK)
        found += [Path(top, n) for n in sorted(names)
                  if Path(n).suffix in SUFFIXES and not n.startswith(".")
                  and os.path.isfile(os.path.join(top, n))]
    return sorted(found)


def pick_file(files: list[Path]) -> Path | None:
    """The submission among ``files``: lab, submission, main or solution first; else a
    notebook before a script, the larger first."""
    if not files:
        return None
    for stem in PREFERRED:
        for f in files:
            if f.stem.lower() == stem:
                return f
    return sorted(files, key=lambda f: (f.suffix != ".ipynb", -f.stat().st_size, f.name))[0]


def load_submission(path: str | Path, within: str | Path | None = None) -> Submission:
    """The submission at ``path``.  With ``within`` (a student's folder in a class), a
    ``path`` that is a link leading out of that folder is refused."""
    path = Path(path).expanduser().absolute()
    if path.is_dir():  # a student's folder: the file grader grade would take from it
        chosen = pick_file(candidates(path))
        if chosen is None:
            raise SubmissionError(f"{path} holds no .py or .ipynb file to grade.",
                                  hint="Give the path of the student's .py or .ipynb file.")
        path, within = chosen, within or path
    if within is not None and not inside(path, Path(within)):
        raise SubmissionError(f"{path.name} is a symbolic link that leads outside the "
                              f"student's folder; the grader does not follow it.",
                              hint="Hand in the file itself, not a link to it.")
    path = path.resolve()
    if not path.exists():
        raise SubmissionError(f"Submission not found: {path}",
                              hint="Give the path of the student's .py file.")
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
    notebook = extract(path)
    source = notebook.source if notebook is not None else raw.decode("utf-8")
    return Submission(path, hashlib.sha256(raw).hexdigest(), notebook,
                      sibling_files(source, path.parent))


def builder_arguments(rubric: Rubric) -> str:
    """'input_shape=(32, 32, 3), num_classes=10': a builder's arguments, from the rubric."""
    return f"input_shape={tuple(rubric.input_shape)}, num_classes={rubric.num_classes}"


def expected_signature(task: Task, rubric: Rubric) -> str:
    return (f"def {task.function}({builder_arguments(rubric)}): "
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
            msg += " " + wrap_hint(task.function, where, builder_arguments(rubric))
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
