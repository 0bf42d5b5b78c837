"""``grader gradescope-bundle``: the autograder zip Gradescope builds its image from.

The zip holds ``setup.sh`` (installs this grader from the source in the zip and
caches CIFAR-10), ``run_autograder`` (grades what the student uploaded to
``/autograder/submission`` and writes ``/autograder/results/results.json``),
the rubric, and the grader's source.
"""
from __future__ import annotations

import shlex
import zipfile
from pathlib import Path

from .errors import UsageError
from .rubric import Rubric

SETUP = """#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder image.
set -euo pipefail
cd /autograder/source
apt-get update -qq && apt-get install -y -qq python3 python3-pip python3-venv >/dev/null
python3 -m venv /autograder/venv
/autograder/venv/bin/pip install --quiet './grader-src[tensorflow-cpu]'
mkdir -p /autograder/data
{data_step}
"""

RUN = """#!/usr/bin/env bash
# Gradescope runs this for every submission.
set -uo pipefail
ROOT="${{AUTOGRADER_ROOT:-/autograder}}"
GRADER="${{GRADER_BIN:-$ROOT/venv/bin/grader}}"
export GRADER_CIFAR10="${{GRADER_CIFAR10:-$ROOT/data/cifar10.npz}}"
mkdir -p "$ROOT/results/grader"
sub=$(find "$ROOT/submission" -maxdepth 3 -type f \\( -name '*.ipynb' -o -name '*.py' \\) \\
      | sort | head -n 1)
if [ -z "$sub" ]; then
  echo '{{"score": 0, "output": "No .py or .ipynb file was submitted. Upload your lab file.", "tests": []}}' \\
    > "$ROOT/results/results.json"
  exit 0
fi
"$GRADER" check "$sub" --rubric "$ROOT/source/rubric.toml" --out "$ROOT/results/grader" \\
  --format gradescope {quick}
if [ -f "$ROOT/results/grader/gradescope.json" ]; then
  cp "$ROOT/results/grader/gradescope.json" "$ROOT/results/results.json"
else
  echo '{{"score": 0, "output": "The grader could not grade this submission; your TA has been told.", "tests": []}}' \\
    > "$ROOT/results/results.json"
fi
"""

_DATA_FROM_KERAS = ("/autograder/venv/bin/python -c \"import keras, numpy as np; "
                    "(a, b), (c, d) = keras.datasets.cifar10.load_data(); "
                    "np.savez('/autograder/data/cifar10.npz', x_train=a, y_train=b, x_test=c, "
                    "y_test=d)\"")


def write_bundle(output: str | Path, rubric: Rubric, data_url: str | None = None,
                 quick: bool = False) -> Path:
    output = Path(output)
    if output.suffix != ".zip":
        raise UsageError(f"The bundle is a .zip file. Received: {output.name}")
    src = Path(__file__).resolve().parent
    root = src.parent
    if data_url:
        data_step = (f"curl -fsSL {shlex.quote(data_url)} -o /autograder/data/cifar10.npz")
    else:
        data_step = _DATA_FROM_KERAS
    with zipfile.ZipFile(output, "w", zipfile.ZIP_DEFLATED) as z:
        def add(name: str, text: str, mode: int = 0o644):
            info = zipfile.ZipInfo(name)
            info.external_attr = (0o100000 | mode) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, text)

        add("setup.sh", SETUP.format(data_step=data_step), 0o755)
        add("run_autograder", RUN.format(quick="--quick" if quick else ""), 0o755)
        add("rubric.toml", Path(rubric.path).read_text())
        for f in sorted(src.rglob("*")):
            if f.is_file() and "__pycache__" not in f.parts:
                add(f"grader-src/grader/{f.relative_to(src)}", f.read_text())
        for extra in ("pyproject.toml", "README.md"):
            add(f"grader-src/{extra}", (root / extra).read_text())
        for f in sorted((root / "rubrics").glob("*.toml")):
            add(f"grader-src/rubrics/{f.name}", f.read_text())
    return output
