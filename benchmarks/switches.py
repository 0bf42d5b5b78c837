"""What each of the grader's training switches costs, one at a time, in plain keras.

One training of a reference model (1 epoch, real data) per run, in a fresh process, with
a set of switches: ``spe`` (steps_per_execution 32), ``det`` (TensorFlow's op
determinism), ``cb`` (the grader's progress callback), ``pred`` (predict the test images
instead of evaluate).  Every set runs ``--repeats`` (at least 3) rounds, the order
reversed every other round; prints the median and spread of fit + test per set, and one
JSON line with the versions.

    python benchmarks/switches.py --data ~/.cache/cifar10-real/cifar10.npz --task fc \\
        --batch-size 128 --sets none,spe,det+spe,det+spe+cb+pred --repeats 3
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

RUN = textwrap.dedent("""
    import importlib.util, json, sys, time
    import keras
    from grader.data import load_dataset, make_split
    from grader.rubric import load_rubric
    from grader.child.training import make_progress_callback, to_float
    sub, fn, data, batch, seed, switches = sys.argv[1:7]
    switches = set(switches.split("+"))
    r = load_rubric()
    ds = load_dataset(data)
    split = make_split(ds, r.validation_fraction, r.split_seed)
    if "det" in switches:
        import tensorflow as tf
        tf.config.experimental.enable_op_determinism()
    spec = importlib.util.spec_from_file_location("submission", sub)
    mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
    keras.utils.set_random_seed(int(seed))
    model = getattr(mod, fn)()
    opt = model.optimizer if model.compiled else r.training.optimizer
    loss = model.loss if model.compiled else r.training.loss
    model.compile(optimizer=opt, loss=loss, metrics=["accuracy"],
                  steps_per_execution=32 if "spe" in switches else 1)
    x, xv, xt = to_float(split.x_train), to_float(split.x_val), to_float(split.x_test)
    y, yv = split.y_train.astype("int32"), split.y_val.astype("int32")
    steps = -(-len(x) // int(batch))
    cbs = [make_progress_callback(lambda m: None, fn, 1, steps)] if "cb" in switches else []
    t0 = time.perf_counter()
    model.fit(x, y, batch_size=int(batch), epochs=1, validation_data=(xv, yv), shuffle=True,
              verbose=0, callbacks=cbs)
    if "pred" in switches:
        model.predict(xt, batch_size=500, verbose=0)
    else:
        model.evaluate(xt, ds.y_test[split.test_index].astype("int32"), batch_size=500,
                       verbose=0)
    print(json.dumps({"seconds": time.perf_counter() - t0, "keras": keras.__version__}))
""")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--submission", default=str(REPO / "reference" / "cifar10_lab.py"))
    ap.add_argument("--task", default="fc")
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--sets", default="none,spe,det+spe,det+spe+cb+pred",
                    help="comma-separated switch sets; switches joined by +: spe, det, cb, "
                         "pred; none for keras' defaults")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    if args.repeats < 3:
        raise SystemExit("--repeats must be at least 3: a median needs them")
    sys.path.insert(0, str(REPO))
    from grader.rubric import load_rubric
    fn = load_rubric().task(args.task).function
    sets = args.sets.split(",")
    times: dict[str, list[float]] = {s: [] for s in sets}
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": os.pathsep.join(
        [str(REPO)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])}
    for i in range(args.repeats):
        for s in (sets if i % 2 == 0 else sets[::-1]):
            out = subprocess.run([sys.executable, "-c", RUN, args.submission, fn, args.data,
                                  str(args.batch_size), str(args.seed), s],
                                 capture_output=True, text=True, env=env, check=True)
            seconds = json.loads(out.stdout.strip().splitlines()[-1])["seconds"]
            times[s].append(seconds)
            print(f"round {i + 1} {s}: {seconds:.1f} s", flush=True)
    import platform
    print(json.dumps({"task": args.task, "batch_size": args.batch_size,
                      "repeats": args.repeats, "python": platform.python_version()}))
    for s, v in times.items():
        print(f"{s}: median {statistics.median(v):.1f} s (min {min(v):.1f}, max {max(v):.1f})")


if __name__ == "__main__":
    main()
