"""Take the model-building code out of a Jupyter notebook, without running the notebook.

Students write this lab in notebooks whose cells load data, build models at
the top level, call ``model.fit`` and plot.  The grader trains under its own
budget, so it keeps only what defines things: imports, function and class
definitions, constants and the ``TRAINING`` dict.  Everything else (data
loading, training, evaluation, plots, magics, shell lines) is skipped, and the
results say which cells were taken and which skipped.

Parsed with nbformat and ``ast``; the kept statements are written out as a
Python module with a map from its lines back to notebook cells.
"""
from __future__ import annotations

import ast
import builtins
from dataclasses import dataclass, field
from pathlib import Path

from .errors import SubmissionError

# Calls that make an assignment a computation on data rather than a constant.
_DATA_CALLS = {"fit", "evaluate", "predict", "load_data", "train_test_split", "show", "plot",
               "imshow", "read_csv", "load", "open", "astype", "reshape", "to_categorical"}
# Module prefixes whose calls build configuration objects (regularizers, initializers ...).
_SAFE_ROOTS = {"keras", "layers", "tf", "np", "numpy", "math", "regularizers", "initializers",
               "optimizers", "losses", "activations", "models"}
_MODEL_MAKERS = {"Model", "Sequential"}


@dataclass
class Extracted:
    source: str
    line_to_cell: list[int]  # 1-based line of the generated module -> notebook cell number
    taken: list[int] = field(default_factory=list)
    skipped: list[dict] = field(default_factory=list)  # {"cell", "why"}
    skipped_names: dict[str, int] = field(default_factory=dict)  # name -> cell that sets it
    top_level_models: list[int] = field(default_factory=list)  # cells building a model inline
    unresolved: list[dict] = field(default_factory=list)  # {"function", "name", "cell"}

    def cell_of(self, line: int | None) -> int | None:
        if line is None or not 1 <= line <= len(self.line_to_cell):
            return None
        return self.line_to_cell[line - 1]

    def describe(self) -> dict:
        return {"cells_taken": self.taken, "cells_skipped": self.skipped,
                "top_level_models": self.top_level_models, "unresolved": self.unresolved}


def _strip_magics(src: str) -> tuple[str, bool]:
    """Remove IPython-only lines; True when the whole cell is a cell magic (%%bash ...)."""
    if src.lstrip().startswith("%%"):
        return "", True
    lines = ["" if l.lstrip().startswith(("%", "!")) else l for l in src.splitlines()]
    return "\n".join(lines), False


def _calls(node) -> list[str]:
    names = []
    for sub in ast.walk(node):
        if isinstance(sub, ast.Call):
            f = sub.func
            names.append(f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", ""))
    return names


def _root(node) -> str:
    while isinstance(node, (ast.Attribute, ast.Call, ast.Subscript)):
        node = node.func if isinstance(node, ast.Call) else node.value
    return getattr(node, "id", "")


def _is_constant(value, defined: set[str]) -> bool:
    """An expression safe to run at import: literals, names already kept, config objects."""
    for sub in ast.walk(value):
        if isinstance(sub, ast.Call):
            name = sub.func.attr if isinstance(sub.func, ast.Attribute) else \
                getattr(sub.func, "id", "")
            if name in _DATA_CALLS or name in _MODEL_MAKERS:
                return False
            if _root(sub.func) not in _SAFE_ROOTS:
                return False
        elif isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Load):
            if sub.id not in defined and sub.id not in _SAFE_ROOTS and \
                    not hasattr(builtins, sub.id):
                return False
    return True


def _targets(stmt) -> list[str]:
    out = []
    targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
    for t in targets:
        for sub in ast.walk(t):
            if isinstance(sub, ast.Name):
                out.append(sub.id)
    return out


def _builds_model(stmt) -> bool:
    return any(name in _MODEL_MAKERS for name in _calls(stmt))


def extract(path: Path) -> Extracted:
    try:
        import nbformat
    except ImportError:  # pragma: no cover - nbformat is a dependency
        raise SubmissionError("Reading notebooks needs nbformat.",
                              hint="pip install nbformat") from None
    try:
        nb = nbformat.read(str(path), as_version=4)
    except Exception as exc:  # nbformat raises several types for a broken file
        raise SubmissionError(f"{path.name} is not a readable notebook: {exc}",
                              hint="Open it in Jupyter and save it again, or export it "
                                   "as a .py file.") from None
    out_lines: list[str] = []
    line_to_cell: list[int] = []
    ex = Extracted("", line_to_cell)
    defined: set[str] = set()
    n = 0
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        n += 1
        src, cell_magic = _strip_magics(cell.source)
        if cell_magic:
            ex.skipped.append({"cell": n, "why": "a cell magic"})
            continue
        try:
            tree = ast.parse(src)
        except SyntaxError:
            # Kept as is: importing it reports the syntax error with this cell's line.
            kept = src.splitlines()
            ex.taken.append(n)
            out_lines += [f"# --- cell {n} ---", *kept]
            line_to_cell += [n] * (len(kept) + 1)
            continue
        lines = src.splitlines()
        kept_any, skipped_what = False, set()
        for stmt in tree.body:
            keep = False
            if isinstance(stmt, (ast.Import, ast.ImportFrom, ast.FunctionDef,
                                 ast.AsyncFunctionDef, ast.ClassDef)):
                keep = True
            elif isinstance(stmt, (ast.Assign, ast.AnnAssign)) and stmt.value is not None:
                keep = _is_constant(stmt.value, defined)
                if not keep:
                    for name in _targets(stmt):
                        ex.skipped_names.setdefault(name, n)
            if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant):
                continue  # a bare string or number: nothing to run
            if keep:
                if isinstance(stmt, (ast.Import, ast.ImportFrom)):
                    defined.update((a.asname or a.name).split(".")[0] for a in stmt.names)
                elif isinstance(stmt, (ast.Assign, ast.AnnAssign)):
                    defined.update(_targets(stmt))
                else:
                    defined.add(stmt.name)
                start = (stmt.decorator_list[0].lineno
                         if getattr(stmt, "decorator_list", None) else stmt.lineno)
                chunk = lines[start - 1:stmt.end_lineno]
                if not kept_any:
                    out_lines.append(f"# --- cell {n} ---")
                    line_to_cell.append(n)
                out_lines += chunk
                line_to_cell += [n] * len(chunk)
                kept_any = True
            else:
                calls = set(_calls(stmt))
                skipped_what.add("training" if calls & {"fit"} else
                                 "evaluation" if calls & {"evaluate", "predict"} else
                                 "data loading" if calls & {"load_data", "astype",
                                                            "to_categorical", "reshape"} else
                                 "plotting" if calls & {"show", "plot", "imshow", "figure",
                                                        "subplot"} else "top-level code")
                if _builds_model(stmt) and n not in ex.top_level_models:
                    ex.top_level_models.append(n)
        if kept_any:
            ex.taken.append(n)
        if skipped_what:
            ex.skipped.append({"cell": n, "why": ", ".join(sorted(skipped_what))})
    ex.source = "\n".join(out_lines) + "\n"
    ex.unresolved = _unresolved(ex.source, ex.skipped_names, ex.line_to_cell)
    return ex


def _unresolved(source: str, skipped_names: dict[str, int], line_to_cell) -> list[dict]:
    """Names a kept function reads that only a skipped statement defines."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    module_names = set(dir(builtins))
    for stmt in tree.body:
        if isinstance(stmt, (ast.Import, ast.ImportFrom)):
            module_names.update((a.asname or a.name).split(".")[0] for a in stmt.names)
        elif isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            module_names.add(stmt.name)
        elif isinstance(stmt, (ast.Assign, ast.AnnAssign)):
            module_names.update(_targets(stmt))
    found = []
    for stmt in tree.body:
        if not isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        local = {a.arg for a in ast.walk(stmt.args) if isinstance(a, ast.arg)}
        for sub in ast.walk(stmt):
            if isinstance(sub, ast.Name) and isinstance(sub.ctx, (ast.Store, ast.Del)):
                local.add(sub.id)
            elif isinstance(sub, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) \
                    and sub is not stmt:
                local.add(sub.name)
        for sub in ast.walk(stmt):
            if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Load) and \
                    sub.id not in local and sub.id not in module_names:
                item = {"function": stmt.name, "name": sub.id,
                        "cell": line_to_cell[stmt.lineno - 1]
                        if stmt.lineno <= len(line_to_cell) else None,
                        "defined_in_cell": skipped_names.get(sub.id)}
                if item not in found:
                    found.append(item)
    return found


def unresolved_message(item: dict) -> str:
    msg = (f"{item['function']} (cell {item['cell']}) uses {item['name']!r}, which it never "
           f"defines")
    if item.get("defined_in_cell"):
        msg += (f"; cell {item['defined_in_cell']} sets it, but that cell loads data, trains or "
                f"plots, so the grader does not run it")
    if item["name"] in ("X_train", "x_train", "X_test", "x_test"):
        return msg + ". Use the input_shape argument instead: " \
                     "def build_...(input_shape=(32, 32, 3), num_classes=10)."
    return msg + f". Define {item['name']!r} inside the function or as a constant in a cell " \
                 f"with only definitions."


def wrap_hint(function: str, cell: int) -> str:
    return (f"Cell {cell} builds a model at the top level instead. Wrap it in the function: "
            f"def {function}(input_shape=(32, 32, 3), num_classes=10): ... (the cell's "
            f"layers, using input_shape) ... return model")
