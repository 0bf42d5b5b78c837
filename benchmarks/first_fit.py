"""What a quick check's training costs in plain keras, without the grader: a model from a
submission fitted on the quick check's 512 images for one epoch, twice in a row.  The
first ``fit`` builds and traces the training graph; the second runs the same steps on the
traced graph.  Their difference is the tracing a quick check pays for every model.

    python benchmarks/first_fit.py reference/cifar10_lab.py --function build_final_model
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import time


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("submission")
    ap.add_argument("--function", default="build_final_model")
    ap.add_argument("--samples", type=int, default=512)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--steps-per-execution", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()

    import keras
    import numpy as np

    spec = importlib.util.spec_from_file_location("submission", args.submission)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    rng = np.random.default_rng(0)
    x = rng.random((args.samples, 32, 32, 3), dtype="float32")
    y = rng.integers(0, 10, args.samples)
    firsts, seconds = [], []
    for i in range(args.repeats):
        keras.utils.set_random_seed(i)
        model = getattr(module, args.function)()
        optimizer = model.optimizer if model.compiled else "adam"
        loss = model.loss if model.compiled else "sparse_categorical_crossentropy"
        model.compile(optimizer=optimizer, loss=loss, metrics=["accuracy"],
                      steps_per_execution=args.steps_per_execution)
        times = []
        for _ in range(2):
            t0 = time.perf_counter()
            model.fit(x, y, epochs=1, batch_size=args.batch_size, verbose=0)
            times.append(time.perf_counter() - t0)
        firsts.append(times[0])
        seconds.append(times[1])
        print(f"run {i + 1}: first fit {times[0]:.2f} s, second {times[1]:.2f} s", flush=True)
    print(json.dumps({"function": args.function, "samples": args.samples,
                      "batch_size": args.batch_size,
                      "steps_per_execution": args.steps_per_execution,
                      "first_fit_median_s": round(statistics.median(firsts), 2),
                      "second_fit_median_s": round(statistics.median(seconds), 2),
                      "first_s": [round(t, 2) for t in firsts],
                      "second_s": [round(t, 2) for t in seconds],
                      "keras": keras.__version__, "backend": keras.backend.backend()}))


if __name__ == "__main__":
    main()
