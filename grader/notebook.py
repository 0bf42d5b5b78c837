"""Take the model-building code out of a notebook or a script, without running it.

Students write this lab in notebooks (and scripts exported from them) whose cells
load data, build models at the top level, call ``model.fit`` and plot.  The grader
trains under its own budget, so it keeps only what defines things: imports, function
and class definitions, constants and the ``TRAINING`` dict.  Everything else (data
loading, training, evaluation, plots, magics, shell lines) is skipped, and the results
say what was taken and what skipped.  A ``.py`` file is read the same way, as one cell,
so a script exported from Colab grades like the notebook it came from.

Three things a real notebook needs beyond that:

- IPython syntax (``%magic``, ``!shell`` lines with backslash continuations, ``%%`` cell
  magics, ``x = !cmd``, ``get_ipython()`` calls, shell lines inside blocks) becomes
  ``pass`` line for line, so line numbers stay those of the cell;
- each kept import is guarded: one that fails (``from google.colab import files``, a
  Keras 2 path) is recorded instead of failing the whole file, and the grader fails only
  the tasks whose builders need its names (``needs``);
- a ``model.compile(...)`` applied in a later cell to a model from a builder
  (``model = build_fc_model()``) is the student's configuration: it is kept as a
  function the child applies to that builder's model (``compiles``).

Parsed with nbformat and ``ast``; the kept statements are written out as a Python
module with a map from each of its lines back to (cell, line in the cell).
"""
from __future__ import annotations

import ast
import builtins
import re
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
# Built-in constructors of plain containers: TRAINING = dict(fc=dict(epochs=10)) is a constant.
_CONTAINERS = {"dict", "list", "tuple", "set", "frozenset"}
# A line IPython runs but Python cannot parse: "!cmd", "%magic", "files = !ls".
_SHELL = re.compile(r"^(\s*)(?:[!%]|[A-Za-z_][\w.]*\s*=\s*[!%])")
# IPython's automagic: these run as magics (``pip install keras``) or shell aliases without
# a ``%`` or ``!`` when automagic is on, as it is in Colab and Jupyter.
_AUTOMAGIC = re.compile(r"^\s*(?:pip|conda|mamba|micromamba|cd|ls|ll|pwd|env|cat|cp|mv|rm|"
                        r"rmdir|mkdir|matplotlib|load_ext|reload_ext|time|timeit|run|who|"
                        r"whos|history|pylab|set_env|config|capture|writefile|sx|system)"
                        r"(?:\s|$)")
# Names in the generated module that are the grader's, not the student's.
FAILED_IMPORTS = "__grader_failed_imports__"
COMPILES = "__grader_compiles__"
_PRELUDE = [f"{FAILED_IMPORTS} = []", f"{COMPILES} = {{}}"]


@dataclass
class Extracted:
    source: str
    line_map: list[tuple[int, int]]  # module line - 1 -> (code cell, line in cell); 0: ours
    kind: str = "notebook"  # or "script": a .py file read as one cell
    taken: list[int] = field(default_factory=list)
    skipped: list[dict] = field(default_factory=list)  # {"cell", "why"} (+ "line" in scripts)
    skipped_names: dict[str, int] = field(default_factory=dict)  # name -> cell that sets it
    top_level_models: list[dict] = field(default_factory=list)  # {"cell", "layers", "text"}
    unresolved: list[dict] = field(default_factory=list)  # {"function", "name", "cell", ...}
    # A top-level TRAINING assignment the grader could not keep without running code.
    training_skipped: dict | None = None  # {"cell", "line", "code"}
    execution_counts: dict[int, int] = field(default_factory=dict)  # cell -> In [n]
    imports: list[dict] = field(default_factory=list)  # {"names", "module", "cell", "line"}
    needs: dict[str, list[str]] = field(default_factory=dict)  # function -> names it needs
    compiles: dict[str, dict] = field(default_factory=dict)  # builder -> {"cell", "line", ...}

    def position(self, line: int | None) -> tuple[int, int] | None:
        if not isinstance(line, int) or not 1 <= line <= len(self.line_map):
            return None
        cell, in_cell = self.line_map[line - 1]
        return (cell, in_cell) if cell else None

    def cell_of(self, line: int | None) -> int | None:
        pos = self.position(line)
        return pos[0] if pos else None

    def cell_name(self, cell: int) -> str:
        """A cell as the student sees it: its position among code cells, and In [n]."""
        count = self.execution_counts.get(cell)
        return f"cell {cell}" + (f" (In [{count}])" if count is not None else "")

    def place(self, cell: int | None, line: int | None) -> str:
        """'line 5' in a script; 'cell 3, In [13], line 5' in a notebook."""
        if self.kind == "script":
            return f"line {line}" if line else ""
        if not cell:
            return ""
        count = self.execution_counts.get(cell)
        return f"cell {cell}" + (f", In [{count}]" if count is not None else "") + \
            (f", line {line}" if line else "")

    def where(self, line: int | None) -> str:
        """' (cell 3, In [13], line 5)' in a notebook, ' (line 5)' in a script."""
        pos = self.position(line)
        return f" ({self.place(*pos)})" if pos else ""

    def describe(self) -> dict:
        return {"kind": self.kind, "cells_taken": self.taken, "cells_skipped": self.skipped,
                "top_level_models": [m["cell"] for m in self.top_level_models],
                "unresolved": self.unresolved, "imports": self.imports,
                "compiles": {k: {"cell": v["cell"], "line": v["line"], "code": v["code"]}
                             for k, v in self.compiles.items()}}


def _logical_starts(lines: list[str]) -> list[bool]:
    """For each physical line, whether a new logical line starts there: not inside
    brackets, a string or a backslash continuation.  A scanner of its own rather than
    ``tokenize``, which stops at the first IPython line that is not Python."""
    starts, depth, quote, continued = [], 0, "", False
    for line in lines:
        starts.append(depth == 0 and not quote and not continued)
        i, n = 0, len(line)
        while i < n:
            c = line[i]
            if quote:
                if c == "\\":
                    i += 2
                    continue
                if line.startswith(quote, i):
                    i += len(quote)
                    quote = ""
                    continue
            elif c == "#":
                break
            elif c in "\"'":
                quote = line[i:i + 3] if line.startswith(c * 3, i) else c
                i += len(quote)
                continue
            elif c in "([{":
                depth += 1
            elif c in ")]}":
                depth = max(depth - 1, 0)
            i += 1
        if quote in ("'", '"'):
            quote = "" if not line.rstrip().endswith("\\") else quote  # an unclosed string
        continued = line.rstrip().endswith("\\") and not line.lstrip().startswith("#")
    return starts


def _is_python(line: str) -> bool:
    try:
        ast.parse(line.strip())
    except SyntaxError:
        return False
    return True


def clean_ipython(src: str) -> tuple[str, bool]:
    """IPython-only lines to ``pass`` (line for line, continuations included, indentation
    kept so that a shell line inside a block stays valid); True when the whole cell is a
    cell magic (``%%bash``...).  Only a line that starts a logical line can be IPython
    syntax: ``x = (a\n     % b)`` is Python.  An automagic command (``pip install x``
    without ``%``) is IPython syntax only where the line is not Python."""
    if src.lstrip().startswith("%%"):
        return "", True
    lines = src.splitlines()
    starts = _logical_starts(lines)
    out, i = [], 0
    while i < len(lines):
        line = lines[i]
        indent = re.match(r"^(\s*)", line).group(1)
        shell = starts[i] and (
            _SHELL.match(line) or re.match(r"^\s*get_ipython\(\)", line) or
            (_AUTOMAGIC.match(line) and not _is_python(line)))
        if shell:
            out.append(indent + "pass")
            while line.rstrip().endswith("\\") and i + 1 < len(lines):
                i += 1
                line = lines[i]
                out.append("")
        else:
            out.append(line)
        i += 1
    return "\n".join(out), False


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
    bound = {n.id for c in ast.walk(value) if isinstance(c, ast.comprehension)
             for n in ast.walk(c.target) if isinstance(n, ast.Name)}
    bound |= {a.arg for a in ast.walk(value) if isinstance(a, ast.arg)}  # lambda arguments
    defined = defined | bound
    for sub in ast.walk(value):
        if isinstance(sub, ast.Call):
            name = sub.func.attr if isinstance(sub.func, ast.Attribute) else \
                getattr(sub.func, "id", "")
            if name in _DATA_CALLS or name in _MODEL_MAKERS:
                return False
            if _root(sub.func) not in _SAFE_ROOTS and not (
                    isinstance(sub.func, ast.Name) and sub.func.id in _CONTAINERS):
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


def _import_names(stmt) -> list[str]:
    return [(a.asname or a.name).split(".")[0] for a in stmt.names if a.name != "*"]


def _is_definition_block(stmt, defined: set[str]) -> bool:
    """A ``try:`` or ``if`` made only of imports, definitions and constants, such as
    ``try: import google.colab except ImportError: ...``."""
    bodies = [stmt.body, getattr(stmt, "orelse", []), getattr(stmt, "finalbody", [])]
    bodies += [h.body for h in getattr(stmt, "handlers", [])]
    for body in bodies:
        for s in body:
            if isinstance(s, (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.ClassDef,
                              ast.AsyncFunctionDef, ast.Pass)):
                continue
            if isinstance(s, (ast.Assign, ast.AnnAssign)) and s.value is not None and \
                    _is_constant(s.value, defined):
                continue
            if isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant):
                continue
            return False
    return True


def _why_skipped(stmt) -> str:
    calls = set(_calls(stmt))
    return ("training" if calls & {"fit"} else
            "evaluation" if calls & {"evaluate", "predict"} else
            "data loading" if calls & {"load_data", "astype", "to_categorical", "reshape"} else
            "plotting" if calls & {"show", "plot", "imshow", "figure", "subplot"} else
            "top-level code")


class _Module:
    """The generated module's lines and, for each, where it came from."""

    def __init__(self):
        self.lines: list[str] = list(_PRELUDE)
        self.line_map: list[tuple[int, int]] = [(0, 0)] * len(_PRELUDE)
        self.hoisted = 0

    def add(self, text_lines: list[str], cell: int, first_line: int, indent: str = "") -> None:
        for k, text in enumerate(text_lines):
            self.lines.append(indent + text if text.strip() else text)
            self.line_map.append((cell, first_line + k))

    def ours(self, text: str, cell: int = 0, line: int = 0) -> None:
        self.lines.append(text)
        self.line_map.append((cell, line))

    def hoist(self, text_lines: list[str], cell: int, first_line: int) -> None:
        """A ``from __future__`` import: Python accepts it only at the top of the module,
        before the grader's own lines."""
        at = self.hoisted
        self.lines[at:at] = text_lines
        self.line_map[at:at] = [(cell, first_line + k) for k in range(len(text_lines))]
        self.hoisted += len(text_lines)


def _read_cells(path: Path) -> tuple[list[tuple[int, str, int | None, str]], str]:
    """(code cell number, source, execution count, markdown just before it), and the kind."""
    if path.suffix != ".ipynb":
        try:
            return [(1, path.read_text(encoding="utf-8"), None, "")], "script"
        except (OSError, UnicodeDecodeError) as exc:
            raise SubmissionError(f"Cannot read {path.name}: {exc}") from None
    try:
        import nbformat
        nb = nbformat.read(str(path), as_version=4)
    except Exception as exc:  # nbformat raises several types for a broken file
        raise SubmissionError(f"{path.name} is not a readable notebook: {exc}",
                              hint="Open it in Jupyter and save it again, or export it "
                                   "as a .py file.") from None
    cells, n, markdown = [], 0, ""
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            markdown = cell.source
        elif cell.cell_type == "code":
            n += 1
            cells.append((n, cell.source, cell.get("execution_count"), markdown))
            markdown = ""
    return cells, "notebook"


def extract(path: Path) -> Extracted:
    cells, kind = _read_cells(Path(path))
    out = _Module()
    ex = Extracted("", out.line_map, kind=kind)
    defined: set[str] = set()
    functions: set[str] = set()
    def_pos: dict[str, tuple[int, int]] = {}  # function -> (cell, line in cell)
    star = False
    kept_nodes: list[ast.stmt] = []
    later: list[tuple[int, str, ast.stmt]] = []  # skipped statements, for compile calls
    for n, source, count, markdown in cells:
        if count is not None:
            ex.execution_counts[n] = count
        src, cell_magic = clean_ipython(source)
        if cell_magic:
            ex.skipped.append({"cell": n, "why": "a cell magic"})
            continue
        try:
            tree = ast.parse(src)
        except SyntaxError:
            # Kept as is: importing it reports the syntax error with this cell's line.
            ex.taken.append(n)
            out.add(src.splitlines(), n, 1)
            continue
        lines = src.splitlines()
        kept_any, skipped_what = False, []
        for stmt in tree.body:
            start = stmt.decorator_list[0].lineno if getattr(stmt, "decorator_list", None) \
                else stmt.lineno
            chunk = lines[start - 1:stmt.end_lineno]
            if isinstance(stmt, ast.Pass) or (isinstance(stmt, ast.Expr) and
                                              isinstance(stmt.value, ast.Constant)):
                continue  # a bare string, or IPython syntax made a pass: nothing to run
            if isinstance(stmt, ast.ImportFrom) and stmt.module == "__future__":
                out.hoist(chunk, n, start)
                kept_nodes.append(stmt)
                kept_any = True
                continue
            if isinstance(stmt, (ast.Import, ast.ImportFrom)):
                names = _import_names(stmt)
                star = star or any(a.name == "*" for a in stmt.names)
                module = stmt.module if isinstance(stmt, ast.ImportFrom) else \
                    ", ".join(a.name for a in stmt.names)
                ex.imports.append({"names": names, "module": module or "", "cell": n,
                                   "line": stmt.lineno, "code": " ".join(
                                       l.strip() for l in chunk)[:200]})
                defined.update(names)
                # Guarded: a failed import is recorded, and fails only the builders that
                # need one of its names.
                out.ours("try:", n, stmt.lineno)
                out.add(chunk, n, start, indent="    ")
                out.ours("except ImportError as __grader_exc__:", n, stmt.lineno)
                out.ours(f"    {FAILED_IMPORTS}.append({{'index': {len(ex.imports) - 1}, "
                         f"'error': type(__grader_exc__).__name__ + ': ' + "
                         f"str(__grader_exc__)}})", n, stmt.lineno)
                kept_nodes.append(stmt)
                kept_any = True
                continue
            keep = isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
            if isinstance(stmt, (ast.Assign, ast.AnnAssign)) and stmt.value is not None:
                keep = _is_constant(stmt.value, defined)
                if not keep:
                    for name in _targets(stmt):
                        ex.skipped_names.setdefault(name, n)
                        if name == "TRAINING":
                            ex.training_skipped = {"cell": n, "line": stmt.lineno,
                                                   "code": ast.unparse(stmt)[:200]}
            elif isinstance(stmt, (ast.Try, ast.If)) and _is_definition_block(stmt, defined):
                keep = not (isinstance(stmt, ast.If) and "__name__" in ast.unparse(stmt.test))
            if keep:
                if isinstance(stmt, (ast.Assign, ast.AnnAssign)):
                    defined.update(_targets(stmt))
                elif isinstance(stmt, (ast.Try, ast.If)):
                    for sub in ast.walk(stmt):
                        if isinstance(sub, (ast.Import, ast.ImportFrom)):
                            defined.update(_import_names(sub))
                        elif isinstance(sub, (ast.FunctionDef, ast.ClassDef)):
                            defined.add(sub.name)
                else:
                    defined.add(stmt.name)
                    def_pos[stmt.name] = (n, stmt.lineno)
                    if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
                        functions.add(stmt.name)
                out.add(chunk, n, start)
                kept_nodes.append(stmt)
                kept_any = True
                continue
            later.append((n, src, stmt))
            skipped_what.append((stmt.lineno, _why_skipped(stmt)))
            if any(name in _MODEL_MAKERS for name in _calls(stmt)):
                model = next((m for m in ex.top_level_models if m["cell"] == n), None)
                if model is None:
                    model = {"cell": n, "layers": [], "text": markdown}
                    ex.top_level_models.append(model)
                model["layers"] = sorted(set(model["layers"]) |
                                         {c for c in _calls(stmt) if c[:1].isupper()})
                model["text"] += "\n" + "\n".join(chunk)
        if kept_any:
            ex.taken.append(n)
        if skipped_what:
            if kind == "script":
                ex.skipped += [{"cell": n, "line": line, "why": why}
                               for line, why in skipped_what]
            else:
                ex.skipped.append({"cell": n, "why": ", ".join(
                    sorted({w for _, w in skipped_what}))})
    ex.compiles = _compile_calls(later, functions, out)
    ex.source = "\n".join(out.lines) + "\n"
    ex.line_map = out.line_map
    ex.needs = _needs(kept_nodes)
    # After a star import any name may be defined: nothing can be called unresolved.
    ex.unresolved = [] if star else _unresolved(kept_nodes, defined, ex.skipped_names,
                                                def_pos)
    return ex


def _compile_calls(later: list[tuple[int, str, ast.stmt]], functions: set[str],
                   out: _Module) -> dict[str, dict]:
    """``model = build_x()`` then ``model.compile(...)`` in skipped code: the last such
    compile per builder, written as a function the child applies to that builder's model."""
    made: dict[str, str] = {}  # variable -> builder that made it
    found: dict[str, dict] = {}
    for cell, src, stmt in later:
        for node in ast.walk(stmt):
            if isinstance(node, ast.Assign):
                builder = node.value.func.id if isinstance(node.value, ast.Call) and \
                    isinstance(node.value.func, ast.Name) and \
                    node.value.func.id in functions else None
                for name in _targets(node):
                    if builder:
                        made[name] = builder
                    else:  # re-bound to something else: its compile is not the builder's
                        made.pop(name, None)
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and \
                    node.func.attr == "compile" and isinstance(node.func.value, ast.Name) and \
                    node.func.value.id in made:
                builder = made[node.func.value.id]
                call = ast.Call(func=ast.Attribute(value=ast.Name("__model__", ast.Load()),
                                                   attr="compile", ctx=ast.Load()),
                                args=node.args, keywords=node.keywords)
                found[builder] = {"cell": cell, "line": node.lineno,
                                  "code": (ast.get_source_segment(src, node) or "")[:300],
                                  "call": ast.unparse(call)}
    for builder, c in found.items():
        function = f"__grader_compile_{builder}__"
        out.ours(f"def {function}(__model__):", c["cell"], c["line"])
        out.ours(f"    {c['call']}", c["cell"], c["line"])
        out.ours(f"{COMPILES}[{builder!r}] = {function}", c["cell"], c["line"])
    return found


def _loaded_globals(node, local: set[str]) -> set[str]:
    return {sub.id for sub in ast.walk(node)
            if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Load)
            and sub.id not in local}


def _locals(fn) -> set[str]:
    """Names bound inside a function or class: arguments (its own, its nested functions'
    and lambdas'), assignments, loop and comprehension targets, ``except ... as``,
    imports and nested definitions."""
    local = {a.arg for a in ast.walk(fn) if isinstance(a, ast.arg)}
    for sub in ast.walk(fn):
        if isinstance(sub, ast.ExceptHandler) and sub.name:
            local.add(sub.name)
        if isinstance(sub, ast.Name) and isinstance(sub.ctx, (ast.Store, ast.Del)):
            local.add(sub.id)
        elif isinstance(sub, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) \
                and sub is not fn:
            local.add(sub.name)
        elif isinstance(sub, (ast.Import, ast.ImportFrom)):
            local.update(_import_names(sub))
    return local


def _needs(kept: list[ast.stmt]) -> dict[str, list[str]]:
    """For each top-level function and class: the module-level names it uses, following
    the functions and classes it uses in turn (what building its model needs)."""
    direct = {stmt.name: _loaded_globals(stmt, _locals(stmt)) for stmt in kept
              if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}
    out = {}
    for name in direct:
        seen, todo = set(), [name]
        while todo:
            for used in direct.get(todo.pop(), ()):
                if used not in seen:
                    seen.add(used)
                    if used in direct:
                        todo.append(used)
        out[name] = sorted(seen)
    return out


def _unresolved(kept: list[ast.stmt], defined: set[str], skipped_names: dict[str, int],
                def_pos: dict[str, tuple[int, int]]) -> list[dict]:
    """Names a kept function reads that nothing kept defines (set only by a skipped cell,
    or nowhere)."""
    known = set(defined) | set(dir(builtins))
    found = []
    for stmt in kept:
        if not isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        cell, line = def_pos.get(stmt.name, (None, None))
        for name in sorted(_loaded_globals(stmt, _locals(stmt)) - known):
            found.append({"function": stmt.name, "name": name, "cell": cell, "line": line,
                          "defined_in_cell": skipped_names.get(name)})
    return found


_DATA_NAMES = {"x_train", "x_test", "x_val", "x_valid", "train_images", "test_images",
               "images", "x"}
_LABEL_NAMES = {"y_train", "y_test", "y_val", "y_valid", "train_labels", "test_labels",
                "labels", "n_classes", "num_classes", "nb_classes", "classes"}


def unresolved_message(item: dict, ex: Extracted, arguments: str) -> str:
    """Why a builder's free name fails, with advice that fits it; ``arguments`` are the
    rubric's builder arguments (``input_shape=(32, 32, 3), num_classes=10``)."""
    place = ex.place(item.get("cell"), item.get("line"))
    msg = f"{item['function']}{f' ({place})' if place else ''} uses {item['name']!r}, " \
          f"which it never defines"
    if item.get("defined_in_cell"):
        if ex.kind == "script":
            msg += ("; the script sets it in top-level code that loads data, trains or plots, "
                    "which the grader does not run")
        else:
            msg += (f"; {ex.cell_name(item['defined_in_cell'])} sets it, but that cell loads "
                    f"data, trains or plots, so the grader does not run it")
    name = item["name"].lower()
    if name in _DATA_NAMES or name.startswith("x_"):
        return msg + f". Use the input_shape argument instead: def build_...({arguments})."
    if name in _LABEL_NAMES or name.startswith("y_"):
        return msg + f". Use the num_classes argument instead: def build_...({arguments})."
    return msg + f". Define {item['name']!r} inside the function, or as a constant in " + \
        ("a cell with only definitions." if ex.kind != "script" else "the script.")


def wrap_hint(function: str, where: str, arguments: str) -> str:
    return (f"{where[:1].upper() + where[1:]} builds a model at the top level instead. Wrap it "
            f"in the function: def {function}({arguments}): ... "
            f"(the cell's layers, using input_shape) ... return model")
