"""The grader's training of one model against a plain ``model.fit`` + ``evaluate``.

Same model (the builder from a submission), same epochs, batch size, training,
validation and test images, same seed; run one after the other in separate
processes, interleaved over every task and batch size, ``--repeats`` (at least 3)
times, the pair's order alternating from round to round (plain first, then grader
first), so that a machine slowing down or speeding up over minutes, as this VM does,
favours neither side.  The grader runs with its own defaults, plain keras with keras'
defaults: what a student would run.  Prints, per setting, the median time ratio
grader/plain for what the budget covers (fit + predict vs fit + evaluate) with its
spread, and the whole ``grader check`` call (child start-up, data hand-over, checks)
against plain.

    python benchmarks/overhead.py --data ~/.cache/cifar10-real/cifar10.npz \
        --task fc,cnn --epochs 1 --batch-size 32,128 --repeats 3
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


def run_plain(args, sub: Path, fn: str, batch: int) -> dict:
    out = subprocess.run([sys.executable, "-c", PLAIN, str(sub), fn, str(args.data),
                          str(args.epochs), str(batch), str(args.seed)],
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


def run_grader(args, sub: Path, task: str) -> dict:
    import grader
    t0 = time.perf_counter()
    r = grader.check(sub, data=args.data, tasks=task, seed=args.seed,
                     steps_per_execution=args.steps_per_execution,
                     rubric=single_run_rubric(sub.parent))
    wall = time.perf_counter() - t0
    t = r.task(task)
    if "train_s" not in t.timings:
        raise SystemExit(f"the grader did not train {task}: {t.reason}")
    assert len(t.runs or [None]) == 1, "borderline re-grading trained more than once"
    return {"seconds": t.timings["train_s"] + t.timings["predict_s"], "wall": wall,
            "test_accuracy": t.test_accuracy, "environment": r.environment}


def bench_submission(folder: Path, source: str, task: str, epochs: int, batch: int) -> Path:
    """The same builder, with TRAINING fixed to the benchmark's epochs and batch size."""
    sub = folder / f"bench_{task}_{batch}.py"
    # The source itself, not exec(open(...)): the grader takes a file's definitions and
    # skips its other top-level code, so an exec'd builder would not exist for it.
    sub.write_text(Path(source).read_text() +
                   f"\nTRAINING = {{{task!r}: {{'epochs': {epochs}, 'batch_size': {batch}}}}}\n")
    return sub


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--submission", default=str(REPO / "reference" / "cifar10_lab.py"))
    ap.add_argument("--task", default="fc", help="task ids, comma-separated: fc,cnn")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--batch-size", default="32", help="comma-separated: 32,128")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeats", type=int, default=3)
    from grader.options import DEFAULT_STEPS_PER_EXECUTION
    ap.add_argument("--steps-per-execution", type=int, default=DEFAULT_STEPS_PER_EXECUTION,
                    help="the grader's setting (default: the grader's default, "
                         f"{DEFAULT_STEPS_PER_EXECUTION}); plain keras keeps its own default")
    args = ap.parse_args()
    if args.repeats < 3:
        raise SystemExit("--repeats must be at least 3: a ratio from fewer is noise")
    from grader.rubric import load_rubric
    rubric = load_rubric()
    combos = [(task, int(b)) for task in args.task.split(",") for b in args.batch_size.split(",")]
    runs: dict = {c: {"plain": [], "grader": [], "wall": []} for c in combos}
    env = {}
    with tempfile.TemporaryDirectory() as tmp:
        subs = {c: bench_submission(Path(tmp), args.submission, c[0], args.epochs, c[1])
                for c in combos}
        for i in range(args.repeats):  # interleaved: a slow spell falls on every setting
            for task, batch in combos:
                fn = rubric.task(task).function
                if i % 2 == 0:
                    plain = run_plain(args, subs[(task, batch)], fn, batch)
                    graded = run_grader(args, subs[(task, batch)], task)
                else:
                    graded = run_grader(args, subs[(task, batch)], task)
                    plain = run_plain(args, subs[(task, batch)], fn, batch)
                env = graded["environment"]
                r = runs[(task, batch)]
                r["plain"].append(plain["seconds"])
                r["grader"].append(graded["seconds"])
                r["wall"].append(graded["wall"])
                print(f"round {i + 1} {task} batch {batch}: plain {plain['seconds']:.1f} s "
                      f"(acc {plain['test_accuracy']:.4f}), grader {graded['seconds']:.1f} s "
                      f"(acc {graded['test_accuracy']:.4f}, wall {graded['wall']:.1f} s)",
                      flush=True)
    print(json.dumps({"epochs": args.epochs, "steps_per_execution": args.steps_per_execution,
                      "repeats": args.repeats, "device": env.get("device"),
                      "versions": env.get("versions")}))
    print("| task | batch | plain fit+evaluate, median (min-max) | grader fit+predict, median "
          "(min-max) | ratio grader/plain per round, median (min-max) | whole check / plain |")
    print("|---|---|---|---|---|---|")
    for (task, batch), r in runs.items():
        ratios = [g / p for g, p in zip(r["grader"], r["plain"])]
        whole = [w / p for w, p in zip(r["wall"], r["plain"])]
        print(f"| {task} | {batch} | {_spread(r['plain'])} | {_spread(r['grader'])} | "
              f"{statistics.median(ratios):.3f} ({min(ratios):.3f}-{max(ratios):.3f}) | "
              f"{statistics.median(whole):.2f} |")


def _spread(values: list[float]) -> str:
    return f"{statistics.median(values):.1f} s ({min(values):.1f}-{max(values):.1f})"


if __name__ == "__main__":
    main()
