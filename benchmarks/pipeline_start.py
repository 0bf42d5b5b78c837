"""What starting keras' input pipeline costs with TensorFlow's op determinism on and off.

keras (TensorFlow backend) feeds in-memory arrays through a tf.data pipeline; with op
determinism on, TensorFlow rewrites each pipeline it starts (``make_deterministic``).
This times ``iter()`` plus the first batch over the real training images, in a fresh
process per setting (determinism is process-wide), interleaved over ``--repeats`` rounds,
and prints each setting's median and spread, and the hardware and versions.

    python benchmarks/pipeline_start.py --data ~/.cache/cifar10-real/cifar10.npz --repeats 3
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import textwrap

ONE = textwrap.dedent("""
    import json, sys, time
    import numpy as np
    import keras
    import tensorflow as tf
    if sys.argv[1] == "on":
        tf.config.experimental.enable_op_determinism()
    n = int(sys.argv[3])
    with np.load(sys.argv[2]) as d:
        x = d["x_train"][:n].astype("float32") / 255
        y = d["y_train"][:n].astype("int32").ravel()
    keras.utils.set_random_seed(0)
    from keras.src.trainers.data_adapters.array_data_adapter import ArrayDataAdapter
    ds = ArrayDataAdapter(x, y, batch_size=128, shuffle=True).get_tf_dataset()
    times = []
    for _ in range(2):  # the first iterator of a dataset, then a later one
        t0 = time.perf_counter()
        next(iter(ds))
        times.append(time.perf_counter() - t0)
    print(json.dumps({"first": times[0], "later": times[1], "keras": keras.__version__,
                      "tensorflow": tf.__version__}))
""")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, help="an npz with x_train and y_train")
    ap.add_argument("--images", type=int, default=45000)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    if args.repeats < 3:
        raise SystemExit("--repeats must be at least 3: a median needs them")
    runs: dict[str, list[dict]] = {"on": [], "off": []}
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    for i in range(args.repeats):
        for setting in (("on", "off") if i % 2 == 0 else ("off", "on")):
            out = subprocess.run([sys.executable, "-c", ONE, setting,
                                  os.path.expanduser(args.data), str(args.images)],
                                 capture_output=True, text=True, check=True, env=env)
            runs[setting].append(json.loads(out.stdout.strip().splitlines()[-1]))
            print(f"round {i + 1} determinism {setting}: first iterator "
                  f"{runs[setting][-1]['first']:.3f} s, a later one "
                  f"{runs[setting][-1]['later']:.3f} s", flush=True)
    for setting, rs in runs.items():
        first = [r["first"] for r in rs]
        later = [r["later"] for r in rs]
        print(f"determinism {setting}, {args.images} images: first iterator median "
              f"{statistics.median(first):.3f} s ({min(first):.3f}-{max(first):.3f}), "
              f"a later one {statistics.median(later):.3f} s")
    print(json.dumps({"images": args.images, "repeats": args.repeats,
                      "cpu": platform.processor() or platform.machine(),
                      "cpu_count": os.cpu_count(), "python": platform.python_version(),
                      "keras": runs["on"][0]["keras"],
                      "tensorflow": runs["on"][0]["tensorflow"]}))


if __name__ == "__main__":
    main()
