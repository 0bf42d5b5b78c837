"""What the sandbox costs: the time from starting a child to its hello (keras imported),
under each sandbox this machine can run, interleaved, with median and spread.

    python benchmarks/sandbox.py --repeats 5

The sandbox's own cost is the difference from ``none``: building bubblewrap's
namespaces, or Landlock's rules, before the child imports keras.
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


def start_once(kind: str) -> float:
    from grader import confine
    from grader.sandbox import Child, Ended, SandboxLimits

    confinement = confine.detect(kind)
    if confinement.kind != kind:
        raise SystemExit(f"{kind} cannot run here: {confinement.why}")
    with tempfile.TemporaryDirectory(prefix="grader-bench-") as tmp:
        workdir = Path(tmp) / "child"
        workdir.mkdir()
        t0 = time.perf_counter()
        child = Child(workdir, SandboxLimits(confinement=confinement))
        try:
            hello = child.wait_for("hello", 300)
            elapsed = time.perf_counter() - t0
        finally:
            child.close()
    if isinstance(hello, Ended) or hello["sandbox"]["kind"] != kind:
        raise SystemExit(f"{kind}: the child did not start as asked: {hello}")
    return elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--kinds", default="none,bubblewrap,landlock")
    args = ap.parse_args()
    if args.repeats < 3:
        raise SystemExit("--repeats must be at least 3: one run says nothing on this machine")
    from grader.environment import cpu_name

    kinds = args.kinds.split(",")
    start_once(kinds[0])  # warm the page cache: the first import of TensorFlow reads from disk
    times: dict[str, list[float]] = {k: [] for k in kinds}
    for _ in range(args.repeats):
        for kind in kinds:  # interleaved, so a slow spell of the machine hits every kind
            times[kind].append(start_once(kind))
    base = statistics.median(times[kinds[0]])
    rows = {}
    for kind, ts in times.items():
        med = statistics.median(ts)
        rows[kind] = {"median_s": round(med, 3), "min_s": round(min(ts), 3),
                      "max_s": round(max(ts), 3), "extra_vs_first_s": round(med - base, 3),
                      "runs": [round(t, 3) for t in ts]}
        print(f"{kind:>10}: median {med:.2f} s (min {min(ts):.2f}, max {max(ts):.2f}), "
              f"{med - base:+.2f} s vs {kinds[0]}")
    import keras
    print(json.dumps({"cpu": cpu_name(), "python": platform.python_version(),
                      "keras": keras.__version__, "repeats": args.repeats, "results": rows},
                     indent=2))


if __name__ == "__main__":
    main()
