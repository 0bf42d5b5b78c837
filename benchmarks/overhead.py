"""The grader's training of one model against a plain ``model.fit`` + ``evaluate``.

Same model (the builder from a submission), same epochs, batch size, training,
validation and test images, same seed; run one after the other in separate
processes, alternating, ``--repeats`` times.  Prints the time ratio
grader/plain for what the budget covers (fit + predict vs fit + evaluate) and
for the whole ``grader check`` call including the child's start-up.

    python benchmarks/overhead.py --data ~/.cache/cifar10-real/cifar10.npz \
        --task fc --epochs 2 --batch-size 32 --repeats 3
"""
from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

PLAIN = textwrap.dedent("""
    import importlib.util, json, sys, time
    import numpy as np
    import keras
    from grader.data import load_dataset, make_split
    from grader.rubric import load_rubric
    from grader.child.training import encode_labels, to_float
    sub, fn, data, epochs, batch, seed = sys.argv[1:7]
    r = load_rubric()
    split = make_split(load_dataset(data), r.validation_fraction, r.split_seed)
    spec = importlib.util.spec_from_file_location("submission", sub)
    mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
    keras.utils.set_random_seed(int(seed))
    model = getattr(mod, fn)()
    if not model.compiled:
        model.compile(optimizer=r.training.optimizer, loss=r.training.loss, metrics=["accuracy"])
    ds = load_dataset(data)
    x, xv, xt = to_float(split.x_train), to_float(split.x_val), to_float(split.x_test)
    t0 = time.perf_counter()
    model.fit(x, split.y_train.astype("int32"), batch_size=int(batch), epochs=int(epochs),
              validation_data=(xv, split.y_val.astype("int32")), shuffle=True, verbose=0)
    _, acc = model.evaluate(xt, ds.y_test[split.test_index].astype("int32"), batch_size=500,
                            verbose=0)
    print(json.dumps({"seconds": time.perf_counter() - t0, "test_accuracy": acc}))
""")


def run_plain(args, sub: Path, fn: str) -> dict:
    out = subprocess.run([sys.executable, "-c", PLAIN, str(sub), fn, str(args.data),
                          str(args.epochs), str(args.batch_size), str(args.seed)],
                         capture_output=True, text=True, check=True,
                         env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2",
                              "PYTHONPATH": os.pathsep.join(
                                  [str(REPO)] + os.environ.get("PYTHONPATH", "").split(os.pathsep))})
    return json.loads(out.stdout.strip().splitlines()[-1])


def single_run_rubric(folder: Path) -> Path:
    """The bundled rubric with borderline re-grading off: a run near a threshold would
    otherwise train two more seeds, and this benchmark times one training."""
    from grader.rubric import default_rubric_path
    text = default_rubric_path().read_text()
    path = folder / "single_run.toml"
    path.write_text(re.sub(r"(?m)^borderline_seeds = \d+$", "borderline_seeds = 1", text))
    return path


def run_grader(args, sub: Path) -> dict:
    import grader
    t0 = time.perf_counter()
    r = grader.check(sub, data=args.data, tasks=args.task, seed=args.seed,
                     steps_per_execution=args.steps_per_execution,
                     rubric=single_run_rubric(sub.parent))
    wall = time.perf_counter() - t0
    t = r.task(args.task)
    assert len(t.runs or [None]) == 1, "borderline re-grading trained more than once"
    return {"seconds": t.timings["train_s"] + t.timings["predict_s"], "wall": wall,
            "test_accuracy": t.test_accuracy, "environment": r.environment}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--submission", default=str(REPO / "reference" / "cifar10_lab.py"))
    ap.add_argument("--task", default="fc")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--steps-per-execution", type=int, default=1,
                    help="the grader's setting; its default is 32")
    args = ap.parse_args()
    from grader.rubric import load_rubric
    fn = load_rubric().task(args.task).function
    with tempfile.TemporaryDirectory() as tmp:
        # The same builder, with TRAINING fixed to the benchmark's epochs and batch size.
        sub = Path(tmp) / "bench_submission.py"
        sub.write_text(f"exec(open({args.submission!r}).read())\n"
                       f"TRAINING = {{{args.task!r}: {{'epochs': {args.epochs}, "
                       f"'batch_size': {args.batch_size}}}}}\n")
        plain, graded = [], []
        for i in range(args.repeats):
            plain.append(run_plain(args, sub, fn))
            graded.append(run_grader(args, sub))
            print(f"run {i + 1}: plain {plain[-1]['seconds']:.1f} s "
                  f"(acc {plain[-1]['test_accuracy']:.4f}), grader {graded[-1]['seconds']:.1f} s "
                  f"(acc {graded[-1]['test_accuracy']:.4f}, wall {graded[-1]['wall']:.1f} s)",
                  flush=True)
    p = [x["seconds"] for x in plain]
    g = [x["seconds"] for x in graded]
    w = [x["wall"] for x in graded]
    env = graded[-1]["environment"]

    def ms(xs):
        return f"{statistics.mean(xs):.1f} s ± {statistics.stdev(xs) if len(xs) > 1 else 0:.1f}"

    print(json.dumps({"task": args.task, "epochs": args.epochs, "batch_size": args.batch_size,
                      "steps_per_execution": args.steps_per_execution, "repeats": args.repeats,
                      "device": env["device"], "versions": env["versions"]}, indent=None))
    print(f"plain fit+evaluate : {ms(p)}")
    print(f"grader fit+predict : {ms(g)}")
    print(f"grader whole check : {ms(w)} (child start-up, data hand-over, checks)")
    print(f"ratio grader/plain : {statistics.mean(g) / statistics.mean(p):.3f} (budgeted part), "
          f"{statistics.mean(w) / statistics.mean(p):.3f} (whole check)")


if __name__ == "__main__":
    main()
