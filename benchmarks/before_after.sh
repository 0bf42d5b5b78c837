#!/usr/bin/env bash
# The same measurement under two checkouts of the grader, interleaved round by round with
# the order alternating, so that a slow spell of the machine falls on both:
#   quick: a quick check of the reference (wall time, child starts, statuses);
#   batch: a quick class batch of six copies of the reference, --jobs 2.
#
#   git worktree add /tmp/before <commit>
#   bash benchmarks/before_after.sh quick /tmp/before . 3 ~/.cache/cifar10-real/cifar10.npz
#   bash benchmarks/before_after.sh batch /tmp/before . 3 ~/.cache/cifar10-real/cifar10.npz
set -uo pipefail
WHAT=$1; BEFORE=$(cd "$2" && pwd); AFTER=$(cd "$3" && pwd); ROUNDS=${4:-3}; DATA=$5

quick() {  # $1 round, $2 which, $3 tree
    out=$(mktemp -d)
    start=$(date +%s.%N)
    (cd "$3" && PYTHONPATH="$3" python -m grader.cli check reference/cifar10_lab.py \
        --quick --data "$DATA" --out "$out" > "$out/log" 2>&1)
    rc=$?
    end=$(date +%s.%N)
    round=$1; which=$2
    python - "$round" "$which" "$rc" "$start" "$end" "$out/results.json" <<'PY'
import json, sys
rnd, which, rc, start, end, path = sys.argv[1:]
r = json.load(open(path))
print(f"round {rnd} {which}: rc {rc}, {float(end) - float(start):.1f} s, child starts "
      f"{r['environment'].get('child_starts')}, {[t['status'] for t in r['tasks']]}")
PY

    rm -rf "$out"
}

batch() {  # $1 round, $2 which, $3 tree
    echo -n "round $1 $2: "
    tree=$3
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
}

for round in $(seq 1 "$ROUNDS"); do
    if [ $((round % 2)) -eq 1 ]; then order="before after"; else order="after before"; fi
    for which in $order; do
        if [ "$which" = before ]; then tree=$BEFORE; else tree=$AFTER; fi
        "$WHAT" "$round" "$which" "$tree"
    done
done
