"""The grader as users install it: a wheel outside the checkout, and the Gradescope bundle
set up and run as Gradescope would.  Each installs into a fresh virtual environment that
sees the packages of the environment running the tests (keras, TensorFlow) but not the
checkout."""
from __future__ import annotations

import json
import os
import re
import shutil
import site
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from conftest import REPO, SUBMISSIONS


def _venv(path: Path) -> Path:
    """A new venv that sees this environment's packages but not its editable grader.

    ``--system-site-packages`` would show the base interpreter's packages, not those of the
    venv the tests run in, so the new venv lists this environment's site-packages in a
    ``.pth`` file instead: plain paths, whose own ``.pth`` files (the editable install of
    the checkout) are not processed.  No pip of its own: ``python -m pip`` is this
    environment's, so that builds use the setuptools the test extra declares."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)],
                   check=True, capture_output=True, timeout=300)
    inner = Path(sysconfig.get_path("purelib", vars={"base": str(path),
                                                     "platbase": str(path)}))
    outer = [p for p in dict.fromkeys(site.getsitepackages()) if Path(p).is_dir()]
    (inner / "_tests_outer_site.pth").write_text("\n".join(outer) + "\n")
    return path / "bin"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The project's wheel, built once, with the build requirements the test extra declares
    (no build isolation: no download)."""
    wheels = tmp_path_factory.mktemp("wheels")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
                    "--no-build-isolation", "-w", str(wheels), str(REPO)],
                   check=True, capture_output=True, timeout=600)
    (built,) = wheels.glob("*.whl")
    return built


def _clean_env(**extra) -> dict:
    """No PYTHONPATH and a working folder outside the checkout: only the venv's grader."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH",)}
    env.update(extra)
    return env


def _own_grader(bin_dir: Path, cwd: Path) -> str:
    """Where the venv's python imports grader from: must not be the checkout."""
    out = subprocess.run([str(bin_dir / "python"), "-c",
                          "import grader, sys; sys.stdout.write(grader.__file__)"],
                         capture_output=True, text=True, cwd=cwd, env=_clean_env(),
                         check=True, timeout=120)
    assert not out.stdout.startswith(str(REPO)), out.stdout
    return out.stdout


def test_the_wheel_is_this_project_under_its_own_name(wheel):
    """`grader` on PyPI is another project: the distribution is keras-lab-grader, and the
    import package and the command keep the name grader."""
    from grader import DISTRIBUTION

    assert DISTRIBUTION == "keras-lab-grader"
    assert wheel.name.startswith("keras_lab_grader-"), wheel.name
    with zipfile.ZipFile(wheel) as z:
        meta = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
        head = z.read(meta).decode()
        entry = z.read(meta.replace("METADATA", "entry_points.txt")).decode()
    assert re.search(r"^Name: keras-lab-grader$", head, re.M), head[:300]
    assert "grader = grader.cli:main" in entry


def test_install_lines_name_this_project():
    """Every `pip install` line of the README, the docs, the shipped templates and the
    messages names this distribution, never the other project called grader."""
    files = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md")),
             *sorted((REPO / "grader").rglob("*.py")),
             *sorted((REPO / "grader" / "templates").rglob("*.j2"))]
    bad = []
    for f in files:
        for n, line in enumerate(f.read_text(encoding="utf-8").splitlines(), 1):
            if re.search(r"""pip install\s+(?:-\S+\s+)*['"]?grader(\[|['"\s]|$)""", line):
                bad.append(f"{f.relative_to(REPO)}:{n}: {line.strip()}")
    assert not bad, "\n".join(bad)


def test_a_wheel_installed_outside_the_checkout_compares_with_the_reference(
        wheel, synthetic_npz, tmp_path):
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
    assert {"grader/references/cifar10.json", "grader/rubrics/cifar10.toml",
            "grader/templates/gradescope/run_autograder.j2"} <= names
    bin_dir = _venv(tmp_path / "venv")
    subprocess.run([str(bin_dir / "python"), "-m", "pip", "install", "--quiet", "--no-deps",
                    str(wheel)],
                   check=True, capture_output=True, timeout=600)
    work = tmp_path / "elsewhere"
    work.mkdir()
    assert "site-packages" in _own_grader(bin_dir, work)
    shutil.copy(SUBMISSIONS / "good.py", work / "lab.py")
    run = subprocess.run([str(bin_dir / "grader"), "check", "lab.py", "--quick", "--tasks",
                          "fc", "--data", str(synthetic_npz), "--out", "out"],
                         cwd=work, env=_clean_env(), capture_output=True, text=True,
                         timeout=600)
    assert run.returncode == 0, run.stderr
    fc = json.loads((work / "out" / "results.json").read_text())["tasks"][0]
    # Found and read from the installed package; a quick run on a subset is not comparable,
    # and says why (with no reference file there would be no comparison at all).
    assert fc["reference"] == {"comparable": False, "why": fc["reference"]["why"]}
    assert "measured on other data" in fc["reference"]["why"]


def _bundle(tmp_path: Path, *args: str) -> Path:
    from click.testing import CliRunner

    from grader.cli import main
    bundle = tmp_path / "autograder.zip"
    r = CliRunner().invoke(main, ["gradescope-bundle", "-o", str(bundle), *args])
    assert r.exit_code == 0, r.output
    root = tmp_path / "autograder"
    with zipfile.ZipFile(bundle) as z:
        z.extractall(root / "source")
        for info in z.infolist():  # zipfile drops the execute bits
            mode = info.external_attr >> 16
            if mode:
                os.chmod(root / "source" / info.filename, mode & 0o777)
    (root / "submission").mkdir()
    (root / "results").mkdir()
    return root


def test_gradescope_setup_and_run_in_a_fresh_venv(synthetic_npz, tmp_path):
    """setup.sh builds the image (venv, install from the bundle's source, data from
    --data-url, saved under the name its suffix says), run_autograder grades."""
    archive = tmp_path / "served" / "cifar10-copy.npz"
    archive.parent.mkdir()
    shutil.copy(synthetic_npz, archive)
    root = _bundle(tmp_path, "--data-url", archive.as_uri())
    # The venv setup.sh makes exists already, seeing this environment's packages (keras,
    # TensorFlow); setup.sh then installs the bundle's grader into it from source.
    _venv(root / "venv")
    env = _clean_env(AUTOGRADER_ROOT=str(root), GRADER_SETUP_SKIP_APT="1",
                     GRADER_SETUP_VENV_ARGS="--without-pip", GRADER_SETUP_EXTRAS="",
                     GRADER_SETUP_PIP_ARGS="--no-build-isolation")
    env.pop("GRADER_CIFAR10", None)
    setup = subprocess.run(["bash", str(root / "source" / "setup.sh")], env=env,
                           capture_output=True, text=True, timeout=900, cwd=tmp_path)
    assert setup.returncode == 0, setup.stderr[-3000:]
    assert (root / "data" / "cifar10.npz").is_file()
    assert "site-packages" in _own_grader(root / "venv" / "bin", tmp_path)
    shutil.copy(SUBMISSIONS / "fc_with_conv.py", root / "submission" / "lab.py")
    # A full grade that needs no training: the fc fails its structure check, the other
    # builders are missing.
    run = subprocess.run(["bash", str(root / "source" / "run_autograder")], env=env,
                         capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stderr
    result = json.loads((root / "results" / "results.json").read_text())
    names = [t["name"] for t in result["tests"]]
    assert names[0] == "Q2 Fully connected model" and len(names) == 6
    fc = result["tests"][0]
    assert fc["status"] == "failed" and fc["score"] == 0 and "may not use Conv2D" in fc["output"]


def test_gradescope_grader_failure_is_not_blamed_on_anyone(tmp_path):
    """No data: the grader exits 2. The student is told it is not a verdict; the error is
    kept for the staff in a hidden test; nobody is said to have been told."""
    root = _bundle(tmp_path, "--data-url", "https://example.invalid/cifar-10-python.tar.gz")
    shutil.copy(SUBMISSIONS / "good.py", root / "submission" / "lab.py")
    env = _clean_env(AUTOGRADER_ROOT=str(root), GRADER_BIN=str(Path(sys.executable).parent / "grader"),
                     GRADER_CIFAR10=str(tmp_path / "missing.npz"))
    run = subprocess.run(["bash", str(root / "source" / "run_autograder")], env=env,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    result = json.loads((root / "results" / "results.json").read_text())
    assert result["score"] == 0 and "not a verdict on your work" in result["output"]
    assert "has been told" not in result["output"]
    hidden = result["tests"][0]
    assert hidden["visibility"] == "hidden" and "Data path does not exist" in hidden["output"]
    setup = (root / "source" / "setup.sh").read_text()
    assert 'data/cifar-10-python.tar.gz"' in setup
    assert "cifar-10-python.tar.gz" in (root / "source" / "run_autograder").read_text()


def test_a_bad_data_url_is_refused(tmp_path):
    from click.testing import CliRunner

    from grader.cli import main
    r = CliRunner().invoke(main, ["gradescope-bundle", "-o", str(tmp_path / "a.zip"),
                                  "--data-url", "https://host/data.bin"])
    assert r.exit_code == 2 and "--data-url must name an .npz" in r.output
    assert "Traceback" not in r.output
