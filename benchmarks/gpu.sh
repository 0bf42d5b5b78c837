#!/usr/bin/env bash
# The GPU measurements of issue #8, as one prepared run on a lent GPU machine (the
# `device` tool: 15 minutes of device time in all, 10 a command).
#
# That machine has JAX and PyTorch but no TensorFlow, so everything runs on
# KERAS_BACKEND=jax; keras and the two packages it needs that the machine lacks travel
# as wheels. Real CIFAR-10 (184 MB of pixels) is over the 64 MiB a call may carry, so
# the timings use synthetic images of CIFAR-10's exact shape (50,000 + 10,000, learnable
# class patterns) made on the machine: these are times, not accuracies.
#
# Here, once:
#   echo /.whl/ >> .git/info/exclude
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
#       --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
#       -d .whl keras==3.15.1 namex optree
# Then one device call:  run(command="bash benchmarks/gpu.sh", carry=[".whl"],
#                            timeout_s=590)
# The steps come in the order of their worth, each under its own time limit, so a slow
# one leaves the rest their time: the sandbox and backend, the builder/trainer tests
# under JAX, the reference's full grade, and the cost of deterministic GPU ops.
# Every figure lands in $OUT/gpu.log (and the full grade's results.json in $OUT).
#
# GPU_SMOKE=1 runs the same steps on 2,000 images with --quick, to check the
# script on a CPU (with JAX installed) before spending device time on it.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-out/gpu}
mkdir -p "$OUT"
LOG="$OUT/gpu.log"
exec > >(tee -a "$LOG") 2>&1
export PYTHONUNBUFFERED=1 KERAS_BACKEND=jax PYTHONPATH="$PWD"
if [ -d .whl ]; then
    # Into the interpreter's own site-packages: the grader's children get no PYTHONPATH
    # (a sandboxed child sees the interpreter's packages and the grader, nothing else).
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
        .whl/*.whl || exit 1
fi
SMOKE=${GPU_SMOKE:-0}
QUICK=""; N_TRAIN=50000; N_TEST=10000
if [ "$SMOKE" = 1 ]; then QUICK="--quick"; N_TRAIN=2000; N_TEST=500; fi
DATA=/tmp/gpu-synthetic.npz
now() { date +%s.%N; }
since() { python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f} s')" "$1" "$(now)"; }

echo "== machine"; date -u
nvidia-smi -L 2>/dev/null || echo "no nvidia-smi"
python3 -c "import jax, keras; print('jax', jax.__version__, jax.devices()); print('keras', keras.__version__)"

echo "== synthetic data ($N_TRAIN + $N_TEST images)"
python3 - "$N_TRAIN" "$N_TEST" "$DATA" <<'EOF'
import sys
import numpy as np
sys.path.insert(0, "tests")
from conftest import make_synthetic
x_train, y_train, x_test, y_test = make_synthetic(int(sys.argv[1]), int(sys.argv[2]))
np.savez(sys.argv[3], x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
EOF

summary() {  # per task: epochs, batch, training seconds; and the wall time
    python3 - "$1" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
env = r["environment"]
print("device:", env["device"]["name"], "| determinism:", env.get("determinism"),
      "| versions:", env["versions"])
for t in r["tasks"]:
    print(f"  {t['id']:14s} epochs {t.get('epochs_run')} batch {t.get('batch_size')} "
          f"train {(t.get('timings') or {}).get('train_s', 0):6.1f} s  status {t['status']}")
print("  sum of training:",
      f"{sum((t.get('timings') or {}).get('train_s', 0) for t in r['tasks']):.1f} s")
EOF
}

echo "== sandbox and backend, as the grader sees them"
python3 -m grader.cli doctor --data "$DATA" 2>&1 | tail -8

echo "== the builder/trainer tests under JAX on this machine (bit-identical training)"
t0=$(now)
timeout 150 python3 -m pytest -q -p no:cacheprovider -n 2 tests/test_rebuild.py tests/test_trust.py \
    2>&1 | tail -15
echo "wall $(since "$t0")"

echo "== full grade of the reference, every task at its budget (goal: < 60 s on one H100)"
t0=$(now)
timeout 240 python3 -m grader.cli check reference/cifar10_lab.py --data "$DATA" $QUICK \
    --out "$OUT/full" > "$OUT/full.txt" 2>&1
echo "exit $?, wall $(since "$t0") (start-up and compilation included)"
summary "$OUT/full/results.json"

echo "== the same without deterministic GPU ops (their cost)"
t0=$(now)
XLA_FLAGS=--xla_gpu_deterministic_ops=false timeout 150 python3 -m grader.cli check \
    reference/cifar10_lab.py --data "$DATA" $QUICK --out "$OUT/nondet" > "$OUT/nondet.txt" 2>&1
echo "exit $?, wall $(since "$t0")"
summary "$OUT/nondet/results.json"
echo "== done"; date -u
