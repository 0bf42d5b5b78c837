#!/usr/bin/env bash
# A quick class batch (6 copies of the reference, --jobs 2) under two checkouts of the
# grader, interleaved round by round with the order alternating.
#
#   git worktree add /tmp/before <commit>
#   bash benchmarks/batch_ab.sh /tmp/before . 3 ~/.cache/cifar10-real/cifar10.npz
set -uo pipefail
BEFORE=$(cd "$1" && pwd); AFTER=$(cd "$2" && pwd); ROUNDS=${3:-3}; DATA=$4
for round in $(seq 1 "$ROUNDS"); do
  if [ $((round % 2)) -eq 1 ]; then order="before after"; else order="after before"; fi
  for which in $order; do
    if [ "$which" = before ]; then tree=$BEFORE; else tree=$AFTER; fi
    echo -n "round $round $which: "
    (cd /tmp && PYTHONPATH="$tree" python - "$DATA" <<'PY'
import sys, tempfile, time
from pathlib import Path
import grader
from grader.batch import grade_batch
from grader.data import load_dataset
dataset = load_dataset(sys.argv[1])
lab = Path(grader.__file__).parent.parent / "reference" / "cifar10_lab.py"
with tempfile.TemporaryDirectory() as tmp:
    folder = Path(tmp) / "class"
    folder.mkdir()
    for i in range(6):  # distinct files: none is taken from an earlier run
        (folder / f"student{i:03d}.py").write_text(lab.read_text() + f"\n# copy {i}\n")
    t0 = time.perf_counter()
    rows = grade_batch([folder], Path(tmp) / "out", jobs=2, dataset=dataset, quick=True)
    wall = time.perf_counter() - t0
assert all(r.status == "graded" for r in rows), [(r.student, r.problem) for r in rows]
print(f"6 submissions in {wall:.1f} s = {3600 * 6 / wall:.0f} an hour")
PY
    )
  done
done
