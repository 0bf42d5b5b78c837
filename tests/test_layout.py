"""The package's shape as rules the tests check: student code runs only in the child, the
parent never loads keras on import, no module reaches into another's private names, no
import cycles, and the README's module map is the tree."""
import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "grader"
FRAMEWORKS = {"keras", "tensorflow", "jax", "torch"}
# What the child must never import: the parent's verdict machinery and the test labels.
CHILD_FORBIDDEN = {"grader.results", "grader.data", "grader.checks", "grader.rubric"}


def modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(ROOT).with_suffix("")
        parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
        out[".".join(parts)] = path
    return out


def imports(name: str, path: Path, top_level_only: bool = False):
    """(imported module, names, line, at module level) for every import in the file,
    relative imports resolved."""
    tree = ast.parse(path.read_text())
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    top = set(map(id, tree.body))
    for node in ast.walk(tree):
        level = id(node) in top
        if top_level_only and not level:
            continue
        if isinstance(node, ast.Import):
            for a in node.names:
                yield a.name, [], node.lineno, level
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parts = parts[:len(parts) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            names = [a.name for a in node.names]
            yield base, names, node.lineno, level
            for n in names:  # "from . import protocol" imports a module
                if f"{base}.{n}" in modules():
                    yield f"{base}.{n}", [], node.lineno, level


def test_the_parent_never_imports_a_framework_at_module_level():
    bad = [f"{name}:{line} imports {mod}" for name, path in modules().items()
           if not name.startswith("grader.child")
           for mod, _, line, _ in imports(name, path, top_level_only=True)
           if mod.split(".")[0] in FRAMEWORKS]
    assert not bad, bad


def test_the_parent_modules_load_without_keras():
    parent = [n for n in modules() if not n.startswith("grader.child")]
    code = ("import sys\n" + "".join(f"import {n}\n" for n in parent) +
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            f"{sorted(FRAMEWORKS)!r}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=ROOT).stdout.strip()
    assert out == "[]"


def test_the_child_imports_only_what_it_may():
    from grader.child import ALLOWED_PARENT_MODULES

    bad = []
    for name, path in modules().items():
        if not name.startswith("grader.child"):
            continue
        for mod, _, line, _ in imports(name, path):
            if mod.split(".")[0] == "grader" and mod != "grader" and \
                    not mod.startswith("grader.child") and mod not in ALLOWED_PARENT_MODULES:
                bad.append(f"{name}:{line} imports {mod}")
    assert not bad, bad
    assert not CHILD_FORBIDDEN & set(ALLOWED_PARENT_MODULES)


def test_the_running_child_loads_none_of_the_parents_verdict_modules():
    code = ("import sys, grader.child.worker, grader.child.training, grader.child.describe, "
            "grader.child.backend\n"
            "print(sorted(m for m in sys.modules if m.startswith('grader.') and "
            "not m.startswith('grader.child')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=ROOT).stdout.strip()
    loaded = set(eval(out))
    from grader.child import ALLOWED_PARENT_MODULES
    assert loaded <= set(ALLOWED_PARENT_MODULES), loaded - set(ALLOWED_PARENT_MODULES)


def test_no_module_imports_another_modules_private_names():
    bad = []
    for name, path in modules().items():
        tree = ast.parse(path.read_text())
        imported_modules = {}
        for mod, names, line, _ in imports(name, path):
            if not mod.startswith("grader") or mod == name:
                continue
            for n in names:
                if n.startswith("_") and not n.startswith("__"):
                    bad.append(f"{name}:{line} imports {mod}.{n}")
                if f"{mod}.{n}" in modules():
                    imported_modules[n] = f"{mod}.{n}"
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and \
                    node.value.id in imported_modules and node.attr.startswith("_") and \
                    not node.attr.startswith("__"):
                bad.append(f"{name}:{node.lineno} uses {imported_modules[node.value.id]}."
                           f"{node.attr}")
    assert not bad, bad


def test_no_import_cycles_between_modules():
    graph = {name: {mod for mod, _, _, _ in imports(name, path, top_level_only=True)
                    if mod in modules() and mod != name and mod != "grader"}
             for name, path in modules().items()}

    def visit(node, stack):
        if node in stack:
            return stack[stack.index(node):] + [node]
        for nxt in graph[node]:
            cycle = visit(nxt, stack + [node])
            if cycle:
                return cycle
        return None

    for start in graph:
        cycle = visit(start, [])
        assert cycle is None, " -> ".join(cycle)


def test_the_readme_module_map_is_the_tree():
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Module map"):]
    section = section[:section.index("\n## ", 4)]
    named = set(re.findall(r"`((?:child/)?[a-z_]+\.py)`", section))
    tree = {p.relative_to(PACKAGE).as_posix() for p in PACKAGE.rglob("*.py")
            if p.name != "__init__.py"}
    assert named == tree, {"in the README only": named - tree, "not in the README": tree - named}


@pytest.mark.parametrize("command", ["check", "grade"])
def test_check_and_grade_take_every_grading_option(command):
    import dataclasses

    from grader.cli import main
    from grader.options import GradeOptions

    params = {p.name for p in main.commands[command].params}
    wanted = {f.name for f in dataclasses.fields(GradeOptions)} - {"gpu", "gpu_shared"}
    assert wanted <= params, wanted - params
