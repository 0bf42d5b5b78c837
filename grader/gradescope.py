"""``grader gradescope-bundle``: the autograder zip Gradescope builds its image from.

The zip holds ``setup.sh`` (installs this grader from the source in the zip and
caches CIFAR-10), ``run_autograder`` (grades what the student uploaded to
``/autograder/submission`` and writes ``/autograder/results/results.json``),
the rubric, and the grader's source with its rubrics and reference results.
Both scripts are templates in ``grader/templates/gradescope``; the bundle is
written from the installed package alone, so it works from a pip install as
from a checkout.
"""
from __future__ import annotations

import importlib.metadata
import re
import zipfile
from pathlib import Path

from . import DISTRIBUTION, __version__
from .errors import UsageError
from .rendering import render
from .rubric import Rubric

# What --data-url may point at, by the end of its name, and the file setup.sh saves it as:
# the names the grader's data loader recognises.
DATA_FILES = {".npz": "cifar10.npz", ".tar.gz": "cifar-10-python.tar.gz",
              ".tgz": "cifar-10-python.tar.gz"}


def _data_file(data_url: str | None) -> str:
    if not data_url:
        return DATA_FILES[".npz"]
    path = re.sub(r"[?#].*$", "", data_url).lower()
    for suffix, name in DATA_FILES.items():
        if path.endswith(suffix):
            return name
    raise UsageError(f"--data-url must name an .npz or the official cifar-10-python.tar.gz "
                     f"(.tar.gz, .tgz). Received: {data_url}",
                     hint="Point it at a file whose name ends in .npz or .tar.gz.")


def _requirements() -> tuple[list[str], dict[str, list[str]]]:
    """The installed grader's dependencies and its extras (less the test extra)."""
    plain, extras = [], {}
    for req in importlib.metadata.requires(DISTRIBUTION) or []:
        m = re.match(r'^(.*?);\s*extra\s*==\s*"([^"]+)"\s*$', req)
        if m:
            if m.group(2) != "test":
                extras.setdefault(m.group(2), []).append(m.group(1).strip())
        else:
            plain.append(req)
    return plain, extras


def _data_dir(name: str) -> Path:
    """A data folder of the package: inside it when installed, at the top of a checkout."""
    package = Path(__file__).resolve().parent
    inside = package / name
    if inside.is_dir():
        return inside
    return package.parent / {"rubrics": "rubrics", "references": "reference/results"}[name]


def write_bundle(output: str | Path, rubric: Rubric, data_url: str | None = None,
                 quick: bool = False) -> Path:
    output = Path(output)
    if output.suffix != ".zip":
        raise UsageError(f"The bundle is a .zip file. Received: {output.name}")
    data_file = _data_file(data_url)
    plain, extras = _requirements()
    package = Path(__file__).resolve().parent
    with zipfile.ZipFile(output, "w", zipfile.ZIP_DEFLATED) as z:
        def add(name: str, data: str | bytes, mode: int = 0o644):
            info = zipfile.ZipInfo(name)
            info.external_attr = (0o100000 | mode) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, data)

        add("setup.sh", render("gradescope/setup.sh.j2",
            data_url=data_url, data_file=data_file), 0o755)
        add("run_autograder", render("gradescope/run_autograder.j2",
            data_file=data_file, quick=quick), 0o755)
        add("rubric.toml", Path(rubric.path).read_text())
        for f in sorted(package.rglob("*")):
            rel = f.relative_to(package)
            if f.is_file() and "__pycache__" not in rel.parts and \
                    rel.parts[0] not in ("rubrics", "references"):
                add(f"grader-src/grader/{rel.as_posix()}", f.read_bytes())
        for name, pattern in (("rubrics", "*.toml"), ("references", "*.json")):
            for f in sorted(_data_dir(name).glob(pattern)):
                add(f"grader-src/grader/{name}/{f.name}", f.read_bytes())
        add("grader-src/pyproject.toml", render("gradescope/pyproject.toml.j2",
            distribution=DISTRIBUTION, version=__version__,
            dependencies=plain, extras=extras))
    return output
