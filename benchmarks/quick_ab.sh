#!/usr/bin/env bash
# A quick check of the reference under two checkouts of the grader, interleaved: round by
# round, the order alternating, so a slow spell of the machine falls on both.
#
#   git worktree add /tmp/before <commit>
#   bash benchmarks/quick_ab.sh /tmp/before . 3 ~/.cache/cifar10-real/cifar10.npz
#
# Prints each run's wall time, its child starts and its tasks' statuses.
set -uo pipefail
BEFORE=$(cd "$1" && pwd); AFTER=$(cd "$2" && pwd); ROUNDS=${3:-3}; DATA=$4
for round in $(seq 1 "$ROUNDS"); do
  if [ $((round % 2)) -eq 1 ]; then order="before after"; else order="after before"; fi
  for which in $order; do
    if [ "$which" = before ]; then tree=$BEFORE; else tree=$AFTER; fi
    out=$(mktemp -d)
    start=$(date +%s.%N)
    (cd "$tree" && PYTHONPATH="$tree" python -m grader.cli check reference/cifar10_lab.py \
        --quick --data "$DATA" --out "$out" > "$out/log" 2>&1)
    rc=$?
    end=$(date +%s.%N)
    python - "$round" "$which" "$rc" "$start" "$end" "$out/results.json" <<'PY'
import json, sys
rnd, which, rc, start, end, path = sys.argv[1:]
r = json.load(open(path))
print(f"round {rnd} {which}: rc {rc}, {float(end) - float(start):.1f} s, child starts "
      f"{r['environment'].get('child_starts')}, {[t['status'] for t in r['tasks']]}")
PY
    rm -rf "$out"
  done
done
