"""The grader as users install it: a wheel outside the checkout, and the Gradescope bundle
set up and run as Gradescope would.  Each installs into a fresh virtual environment that
sees this machine's packages (keras, TensorFlow) but not the checkout."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path


from conftest import REPO, SUBMISSIONS


def _venv(path: Path) -> Path:
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(path)],
                   check=True, capture_output=True, timeout=300)
    return path / "bin"


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


def test_a_wheel_installed_outside_the_checkout_compares_with_the_reference(
        synthetic_npz, tmp_path):
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
                    "--no-build-isolation", "-w", str(wheels), str(REPO)],
                   check=True, capture_output=True, timeout=600)
    wheel = next(wheels.glob("grader-*.whl"))
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
    assert {"grader/references/cifar10.json", "grader/rubrics/cifar10.toml",
            "grader/templates/gradescope/run_autograder.j2"} <= names
    bin_dir = _venv(tmp_path / "venv")
    subprocess.run([str(bin_dir / "pip"), "install", "--quiet", "--no-deps", str(wheel)],
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
    env = _clean_env(AUTOGRADER_ROOT=str(root), GRADER_SETUP_SKIP_APT="1",
                     GRADER_SETUP_VENV_ARGS="--system-site-packages", GRADER_SETUP_EXTRAS="",
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
    env = _clean_env(AUTOGRADER_ROOT=str(root), GRADER_BIN=shutil.which("grader") or "grader",
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
