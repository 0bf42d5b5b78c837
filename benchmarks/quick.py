"""Wall-clock time of the quick check, as a student runs it.

Runs ``grader check SUBMISSION --quick`` (a fresh process each time: Python start-up,
data loading, the child's start-up and every task) ``--repeats`` times, and prints each
run with the time inside each task, then the median and the spread (min-max), and one
JSON line with the hardware and versions.

    python benchmarks/quick.py --data ~/.cache/cifar10-real/cifar10.npz --repeats 5
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--submission", default=str(REPO / "reference" / "cifar10_lab.py"))
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--sandbox", default="auto")
    args = ap.parse_args()
    if args.repeats < 3:
        raise SystemExit("--repeats must be at least 3: a median needs them")
    walls, env = [], {}
    for i in range(args.repeats):
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            run = subprocess.run([sys.executable, "-m", "grader.cli", "check", args.submission,
                                  "--quick", "--data", args.data, "--out", tmp,
                                  "--sandbox", args.sandbox], capture_output=True, text=True)
            wall = time.perf_counter() - t0
            if run.returncode != 0:
                raise SystemExit(f"the quick check failed:\n{run.stdout[-2000:]}"
                                 f"{run.stderr[-2000:]}")
            res = json.loads((Path(tmp) / "results.json").read_text())
        walls.append(wall)
        env = res["environment"]
        tasks = {t["id"]: round(t["timings"].get("total_s", 0.0), 1) for t in res["tasks"]}
        print(f"run {i + 1}: {wall:.1f} s wall; in the tasks {sum(tasks.values()):.1f} s "
              f"{tasks}", flush=True)
    med = statistics.median(walls)
    print(f"quick check: median {med:.1f} s (min {min(walls):.1f}, max {max(walls):.1f}) "
          f"over {len(walls)} runs")
    print(json.dumps({"median_s": round(med, 1), "min_s": round(min(walls), 1),
                      "max_s": round(max(walls), 1), "runs": [round(w, 1) for w in walls],
                      "device": env.get("device"), "versions": env.get("versions"),
                      "sandbox": (env.get("sandbox") or {}).get("kind"),
                      "python": platform.python_version()}))


if __name__ == "__main__":
    main()
