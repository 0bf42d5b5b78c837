"""Submissions per hour for a batch, ``--jobs 1`` against ``--jobs 2``.

Grades N copies of a submission (each a distinct file, so none is cached) with
``grader grade`` into a fresh folder per setting, and prints the rate.

    python benchmarks/throughput.py --data ~/.cache/cifar10-real/cifar10.npz --n 6 --quick
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--submission", default=str(REPO / "reference" / "cifar10_lab.py"))
    ap.add_argument("--n", type=int, default=6)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--jobs", default="1,2")
    ap.add_argument("--tasks", default=None)
    args = ap.parse_args()
    from grader.batch import grade_batch
    from grader.data import load_dataset
    from grader.environment import cpu_name

    dataset = load_dataset(args.data)
    out = {}
    for jobs in [int(j) for j in args.jobs.split(",")]:
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp) / "class"
            root.mkdir()
            for i in range(args.n):
                text = Path(args.submission).read_text() + f"\n# copy {i}\n"
                (root / f"student{i:03d}.py").write_text(text)
            t0 = time.perf_counter()
            rows = grade_batch([root], Path(tmp) / "out", jobs=jobs, dataset=dataset,
                               quick=args.quick, tasks=args.tasks)
            wall = time.perf_counter() - t0
        rate = 3600 * len(rows) / wall
        out[jobs] = rate
        print(f"--jobs {jobs}: {len(rows)} submissions in {wall:.0f} s = {rate:.0f} per hour",
              flush=True)
    print(json.dumps({"n": args.n, "quick": args.quick, "tasks": args.tasks, "cpu": cpu_name(),
                      "per_hour": out}))


if __name__ == "__main__":
    main()
