"""Where one graded submission's time goes: the builder's start, the trainer's start,
training.  Grades a fixture submission ``--runs`` times in a row with one
``TrainerPool`` (the first run starts its trainer, the next ones reuse it, as a class
batch and the tests do) and prints each run's wall time, its child starts and the task
timings.  Pin it to one core to see a test worker's share:

    taskset -c 0 python benchmarks/one_check.py tests/submissions/good.py --tasks fc --runs 3
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("submission")
    ap.add_argument("--tasks", default="fc")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()

    import grader
    from conftest import make_synthetic  # the tests' synthetic data
    from grader.session import TrainerPool

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        x, y, xt, yt = make_synthetic()
        np.savez(root / "data.npz", x_train=x, y_train=y, x_test=xt, y_test=yt)
        pool = TrainerPool(root / "pool")
        try:
            for _ in range(args.runs):
                t0 = time.perf_counter()
                r = grader.check(args.submission, data=root / "data.npz", tasks=args.tasks,
                                 quick=args.quick, trainers=pool, data_cache=root / "bundles")
                env = r.environment
                print(f"wall {time.perf_counter() - t0:.2f} s  child_starts "
                      f"{env.get('child_starts')}  child_start_s {env.get('child_start_s')}")
                for t in r.tasks:
                    times = {k: round(v, 2) for k, v in t.timings.items()
                             if k in ("build_s", "train_s", "predict_s", "total_s")}
                    print(f"  {t.id}: {t.status}  {times}")
        finally:
            pool.close()


if __name__ == "__main__":
    main()
