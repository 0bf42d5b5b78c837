"""Seed-to-seed spread of test accuracy for a reference model: the basis of the rubric's
borderline band (``[fairness] borderline_band``).

Trains the task with seeds 0..K-1 through the grader itself (same data, split,
epochs and batch size each time; only the seed changes) and prints every run,
the mean, the standard deviation and the band it suggests (twice the spread).

    python benchmarks/noise.py --data ~/.cache/cifar10-real/cifar10.npz --task fc --seeds 5
    python benchmarks/noise.py --data ... --task cnn --seeds 5 --epochs 3   # reduced budget
"""
from __future__ import annotations

import argparse
import json
import statistics
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
    ap.add_argument("--task", default="fc")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--epochs", type=int, default=None,
                    help="override the reference's epochs (a reduced budget; say so)")
    args = ap.parse_args()
    import grader

    with tempfile.TemporaryDirectory() as tmp:
        sub = Path(args.submission)
        if args.epochs is not None:
            sub = Path(tmp) / "noise_submission.py"
            sub.write_text(f"exec(open({args.submission!r}).read())\n"
                           f"TRAINING[{args.task!r}] = dict(TRAINING.get({args.task!r}, {{}}), "
                           f"epochs={args.epochs})\n")
        t0 = time.perf_counter()
        r = grader.check(sub, data=args.data, tasks=args.task, seeds=args.seeds)
        wall = time.perf_counter() - t0
    t = r.task(args.task)
    accs = [run["test_accuracy"] for run in t.runs if "test_accuracy" in run]
    std = statistics.stdev(accs)
    print(json.dumps({"task": args.task, "epochs": t.epochs, "batch_size": t.batch_size,
                      "seeds": [run["seed"] for run in t.runs], "test_accuracy": accs,
                      "device": r.environment["device"], "versions": r.environment["versions"],
                      "data": r.data["fingerprint"], "wall_s": round(wall, 1)}))
    print(f"{args.task}: mean {statistics.fmean(accs):.4f}, std {std:.4f}, "
          f"min {min(accs):.4f}, max {max(accs):.4f} over {len(accs)} seeds "
          f"({t.epochs} epochs, batch {t.batch_size})")
    print(f"suggested borderline_band (2 x std): {2 * std:.4f}")


if __name__ == "__main__":
    main()
