"""Seed-to-seed spread of test accuracy for a reference model: the basis of the rubric's
borderline band (``[fairness] borderline_band``).

Trains the task with seeds 0..K-1 through the grader itself (same data, split,
epochs and batch size each time; only the seed changes) and prints every run,
the mean, the standard deviation and the band it suggests (twice the spread).

    python benchmarks/noise.py --data ~/.cache/cifar10-real/cifar10.npz --task fc --seeds 5
    python benchmarks/noise.py --data ... --task cnn --seeds 5 --epochs 3   # reduced budget
    # seeds 3 and 4, pooled with the reference file's runs (seeds 0-2) of the same model:
    python benchmarks/noise.py --data ... --task cnn --first-seed 3 --seeds 2 \
        --reference reference/results/cifar10.json

``--reference`` pools the runs the reference file holds for the task, after
checking that they trained the same model (layers, optimizer, loss, epochs,
batch size) on the same data: seeds reproduce exactly, so re-training them
would only cost time.
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
    ap.add_argument("--seeds", type=int, default=5, help="how many seeds to train")
    ap.add_argument("--first-seed", type=int, default=0)
    ap.add_argument("--reference", default=None,
                    help="reference results file whose runs of the task join the sample")
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
        r = grader.check(sub, data=args.data, tasks=args.task, seeds=args.seeds,
                         seed=args.first_seed)
        wall = time.perf_counter() - t0
    t = r.task(args.task)
    runs = [(run["seed"], run["test_accuracy"]) for run in t.runs if "test_accuracy" in run]
    if args.reference:
        runs += _reference_runs(Path(args.reference), r, t, {seed for seed, _ in runs})
    runs.sort()
    accs = [acc for _, acc in runs]
    std = statistics.stdev(accs)
    print(json.dumps({"task": args.task, "epochs": t.epochs, "batch_size": t.batch_size,
                      "seeds": [seed for seed, _ in runs], "test_accuracy": accs,
                      "trained_here": [run["seed"] for run in t.runs],
                      "device": r.environment["device"], "versions": r.environment["versions"],
                      "data": r.data["fingerprint"], "wall_s": round(wall, 1)}))
    print(f"{args.task}: mean {statistics.fmean(accs):.4f}, std {std:.4f}, "
          f"min {min(accs):.4f}, max {max(accs):.4f} over {len(accs)} seeds "
          f"({t.epochs} epochs, batch {t.batch_size})")
    print(f"suggested borderline_band (2 x std): {2 * std:.4f}")


def _reference_runs(path: Path, results, task, skip: set[int]) -> list[tuple[int, float]]:
    from grader.reference import load_reference, task_signature

    ref = load_reference(path)
    if ref is None:
        sys.exit(f"{path}: not a reference results file")
    entry = ref["tasks"].get(task.id)
    if entry is None:
        sys.exit(f"{path} has no runs of task {task.id!r}")
    if ref["data"].get("fingerprint") != results.data.get("fingerprint"):
        sys.exit(f"{path} was measured on other data ({ref['data'].get('fingerprint')}); "
                 f"this run: {results.data.get('fingerprint')}")
    if entry.get("signature") != task_signature(task):
        sys.exit(f"{path}: its {task.id!r} runs trained another model or budget than this "
                 f"run; re-run them or drop --reference")
    return [(run["seed"], run["test_accuracy"]) for run in entry["runs"]
            if run["seed"] not in skip]


if __name__ == "__main__":
    main()
