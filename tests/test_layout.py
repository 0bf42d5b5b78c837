"""The package's shape as rules the tests check: student code runs only in the child, the
parent never loads keras on import, no module reaches into another's private names, no
import cycles, and the module map (docs/how-it-works.md) is the tree."""
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


def test_the_module_map_is_the_tree():
    page = (ROOT / "docs" / "how-it-works.md").read_text()
    section = page[page.index("## Module map"):]
    section = section[:section.find("\n## ", 4) % (len(section) + 1)]
    named = set(re.findall(r"`((?:child/)?[a-z_]+\.py)`", section))
    tree = {p.relative_to(PACKAGE).as_posix() for p in PACKAGE.rglob("*.py")
            if p.name != "__init__.py"}
    assert named == tree, {"in the map only": named - tree, "not in the map": tree - named}


@pytest.mark.parametrize("command", ["check", "grade"])
def test_check_and_grade_take_every_grading_option(command):
    import dataclasses

    from grader.cli import main
    from grader.options import GradeOptions

    params = {p.name for p in main.commands[command].params}
    wanted = {f.name for f in dataclasses.fields(GradeOptions)} - {"gpu", "gpu_shared"}
    assert wanted <= params, wanted - params


def _requirement_name(req: str) -> str:
    return re.sub(r"[-_.]+", "-", re.match(r"\s*([A-Za-z0-9._-]+)", req).group(1)).lower()


def _declared_for_tests() -> set[str]:
    """What the README's install command installs: the dependencies and its extras."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    readme = (ROOT / "README.md").read_text()
    extras = re.search(r"pip install -e '\.\[([a-z0-9,-]+)\]'", readme)
    assert extras, "the README's install command (pip install -e '.[...]') is not found"
    reqs = list(project["dependencies"])
    for extra in extras.group(1).split(","):
        reqs += project["optional-dependencies"][extra]
    return {_requirement_name(r) for r in reqs}


def _programs(tree: ast.AST):
    """The Python programs a test runs in a subprocess: strings assigned to a name such as
    PROGRAM or code, or given after ``-c``.  Other strings (a student's cells) are data."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant) and \
                isinstance(node.value.value, str) and any(
                    isinstance(t, ast.Name) and t.id.lower() in ("program", "code")
                    for t in node.targets):
            yield node.value
        elif isinstance(node, ast.List):
            for flag, arg in zip(node.elts, node.elts[1:]):
                if isinstance(flag, ast.Constant) and flag.value == "-c" and \
                        isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    yield arg


def _imported_top_names(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                yield a.name.split(".")[0], node.lineno
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            yield node.module.split(".")[0], node.lineno
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "importorskip" \
                and node.args and isinstance(node.args[0], ast.Constant):
            yield str(node.args[0].value).split(".")[0], node.lineno
    for program in _programs(tree):
        inner = ast.parse(program.value)
        yield from ((name, program.lineno) for name, _ in _imported_top_names(inner))


def test_every_package_a_test_imports_is_declared():
    """A fresh venv with the README's install runs every test: nothing a test imports may
    come only from whatever else the machine happens to have."""
    import importlib.metadata

    provided = importlib.metadata.packages_distributions()
    local = {p.stem for p in (ROOT / "tests").glob("*.py")} | {"grader"}
    declared = _declared_for_tests() | {"pytest"}
    bad = []
    for path in sorted((ROOT / "tests").rglob("*.py")):
        if "submissions" in path.parts:
            continue  # student code: what it imports is the point of those fixtures
        for name, line in _imported_top_names(ast.parse(path.read_text())):
            if name in sys.stdlib_module_names or name in local or name == "__future__":
                continue
            dists = {_requirement_name(d) for d in provided.get(name, [name])}
            if not dists & declared:
                bad.append(f"{path.relative_to(ROOT)}:{line} imports {name} "
                           f"(from {', '.join(sorted(dists))}), declared by no dependency "
                           f"or extra that the README's install command installs")
    assert not bad, "\n".join(bad)


def test_the_build_requirements_are_in_the_test_extra():
    """The tests build the wheel without build isolation (no download), so the test extra
    carries what pyproject.toml's build-system requires."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    py = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert set(py["build-system"]["requires"]) <= set(
        py["project"]["optional-dependencies"]["test"])
