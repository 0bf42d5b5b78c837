"""Submissions per hour for a class batch: ``--jobs 1`` against ``--jobs 2`` on this
machine, or (``--executor ray``) a Ray cluster of one node against one of two nodes,
one CPU each.

Grades N copies of a submission (each a distinct file, so none is cached) into a fresh
folder per run; the settings are interleaved (1, 2, 1, 2, ...) over ``--repeats`` rounds,
so a slow spell of the machine falls on both; prints each run, then the median and the
spread (min-max) per setting, and one JSON line with the hardware and versions.

    python benchmarks/throughput.py --data ~/.cache/cifar10-real/cifar10.npz --n 6 --quick
    unshare -n python benchmarks/throughput.py --executor ray --data ... --n 6 --quick

``--executor ray`` starts its own clusters (tests/raycluster.py: each node in its own PID
namespace, stopped by PID) and must run in a network namespace with only the loopback.
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))


def one_run(args, setting: int, dataset, tmp: Path) -> float:
    from grader.batch import grade_batch

    root = tmp / "class"
    root.mkdir()
    for i in range(args.n):
        text = Path(args.submission).read_text() + f"\n# copy {i}\n"
        (root / f"student{i:03d}.py").write_text(text)
    if args.executor == "ray":
        import ray

        from grader.cluster import RayOptions
        from raycluster import Cluster

        with Cluster(tmp / "cluster", nodes=setting, cpus=1) as cluster:
            ray.init(address=cluster.address, log_to_driver=False, configure_logging=False)
            try:
                t0 = time.perf_counter()
                rows = grade_batch([root], tmp / "out", dataset=dataset, quick=args.quick,
                                   tasks=args.tasks, executor="ray",
                                   ray_options=RayOptions(address=cluster.address))
                wall = time.perf_counter() - t0
            finally:
                ray.shutdown()
    else:
        t0 = time.perf_counter()
        rows = grade_batch([root], tmp / "out", jobs=setting, dataset=dataset,
                           quick=args.quick, tasks=args.tasks)
        wall = time.perf_counter() - t0
    bad = [r for r in rows if r.status != "graded"]
    if bad:
        raise SystemExit(f"not graded: {[(r.student, r.problem) for r in bad]}")
    return wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--submission", default=str(REPO / "reference" / "cifar10_lab.py"))
    ap.add_argument("--n", type=int, default=6)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--executor", choices=("local", "ray"), default="local")
    ap.add_argument("--settings", default="1,2",
                    help="--jobs values (local) or numbers of nodes (ray)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--tasks", default=None)
    args = ap.parse_args()
    if args.repeats < 3:
        raise SystemExit("--repeats must be at least 3: a median needs them")
    if args.executor == "ray":
        from raycluster import loopback_up, only_loopback
        loopback_up()
        if not only_loopback():
            raise SystemExit("run under `unshare -n`: Ray must see only the loopback")
    from grader.data import load_dataset
    from grader.environment import cpu_name

    dataset = load_dataset(args.data)
    settings = [int(s) for s in args.settings.split(",")]
    walls: dict[int, list[float]] = {s: [] for s in settings}
    what = "nodes" if args.executor == "ray" else "--jobs"
    for round_ in range(args.repeats):
        for s in settings:
            with tempfile.TemporaryDirectory() as tmp:
                wall = one_run(args, s, dataset, Path(tmp))
            walls[s].append(wall)
            print(f"round {round_ + 1}: {what} {s}: {args.n} submissions in {wall:.1f} s",
                  flush=True)
    summary = {}
    for s, w in walls.items():
        med = statistics.median(w)
        summary[s] = {"median_s": round(med, 1), "min_s": round(min(w), 1),
                      "max_s": round(max(w), 1), "per_hour": round(3600 * args.n / med)}
        print(f"{what} {s}: median {med:.1f} s (min {min(w):.1f}, max {max(w):.1f}) = "
              f"{3600 * args.n / med:.0f} submissions per hour")
    versions = {"python": platform.python_version()}
    try:
        import ray
        versions["ray"] = ray.__version__
    except ImportError:
        pass
    import keras
    versions["keras"] = keras.__version__
    print(json.dumps({"executor": args.executor, "n": args.n, "quick": args.quick,
                      "tasks": args.tasks, "cpu": cpu_name(), "repeats": args.repeats,
                      "versions": versions, "results": summary}))


if __name__ == "__main__":
    main()
