"""How long a full grade would take on this machine, from what a quick check measured.

A quick check trains each model for one short epoch, and the child times each call into
the backend (``child/training.py``): the first call includes building the training
graph; the later ones are steady steps.  A full run then costs, per task, that one-off
start plus, per epoch, the steps over the whole training set at the student's batch
size and a validation pass, plus predicting the test images (and the re-initialised
recheck: re-initialising clones the model, as building did, and re-compiling it builds
the prediction graph again).  A quick check does not validate (building a second forward
graph would cost it more than the pass tells); the validation graph's one-off cost is
taken as half the training graph's (measured 0.31-0.64 of it, 0.5 median, over the
reference's and the test submission's models).  Forward-only steps (validation,
prediction) are taken as a third of a training step, the usual cost of a forward pass
against forward and backward.
"""
from __future__ import annotations

import math

# A forward pass against a training step (forward, backward and the update).
FORWARD_SHARE = 1 / 3
# The validation graph's one-off cost (building it, its first run, evaluate's set-up)
# against the training graph's, on a 2-core CPU: 0.31-0.64 over eight models.
VALIDATION_START_SHARE = 0.5
RECHECK_IMAGES = 1000  # child/worker.py predicts these again with fresh weights


def task_estimate(timings: dict, epochs: int, batch_size: int, n_train: int, n_val: int,
                  n_test: int, quick_n_val: int, quick_n_test: int) -> float | None:
    """Seconds a full run of one task would take here; None when the quick run did not
    train (nothing was measured)."""
    first_steps, first_s = timings.get("first_steps"), timings.get("first_s")
    if not first_steps or first_s is None:
        return None
    steady_steps, steady_s = timings.get("steady_steps") or 0, timings.get("steady_s") or 0.0
    step_s = steady_s / steady_steps if steady_steps else first_s / first_steps
    start_s = max(first_s - first_steps * step_s, 0.0)  # building the training graph
    per_image_fwd = step_s * FORWARD_SHARE / batch_size
    predict_s = timings.get("predict_s") or 0.0
    predict_start = max(predict_s - quick_n_test * per_image_fwd, 0.0)  # the predict graph
    if timings.get("val_images", quick_n_val):
        val_first = timings.get("val_first_s") or 0.0
        val_start = max(val_first - quick_n_val * per_image_fwd, 0.0)  # the validation graph
    else:  # a quick check does not validate
        val_start = start_s * VALIDATION_START_SHARE
    steps = math.ceil(n_train / batch_size)
    build_s = timings.get("build_s", 0.0)
    # Describing, compiling, re-initialising and handing over the data: once per task.
    other_s = max(timings.get("total_s", 0.0) - build_s - timings.get("train_s", 0.0)
                  - predict_s, 0.0)
    recheck_start = build_s + predict_start  # a clone, and the prediction graph again
    return (build_s + other_s + start_s + val_start + predict_start + recheck_start
            + epochs * (steps * step_s + n_val * per_image_fwd)
            + (n_test + RECHECK_IMAGES) * per_image_fwd)


def full_grade_estimate(results, full_sizes: dict, seeds: int = 1) -> dict | None:
    """The estimate for a quick run's ``results``: per task and in all, in seconds, with
    how it was made.  ``full_sizes``: n_train, n_val and n_test of a full run."""
    if results.graded:
        return None
    tasks = {}
    for t in results.tasks:
        if not t.timings or t.epochs is None or t.batch_size is None:
            continue
        s = task_estimate(t.timings, t.epochs, t.batch_size, full_sizes["n_train"],
                          full_sizes["n_val"], full_sizes["n_test"], results.data["n_val"],
                          results.data["n_test_used"])
        if s is not None:
            tasks[t.id] = round(s * seeds, 1)
    if not tasks:
        return None
    # Rounded as shown before adding, as each task's figure is: the parts a reader sees
    # add up to the total (an unrounded 3.49 s start made 1.6 + 1.8 + 3.5 a 7.0 s total).
    start = round(results.environment.get("child_start_s", 0.0), 1)
    total = sum(tasks.values()) + start
    lanes = results.environment.get("lanes", 1)
    how = ("from the quick check's step times, the student's epochs and batch size and the "
           "full data's size; seeds re-trained near a threshold add to it")
    if lanes > 1:
        # A full grade trains one model at a time on every core; here another child
        # shared them, so the measured steps can only be slower: the estimate errs long.
        how += (f"; measured with {lanes} children sharing the cores, so an upper bound "
                f"(a full grade trains one model at a time)")
    return {"full_grade_s": round(total, 1), "tasks": tasks, "child_start_s": start,
            "device": (results.environment.get("device") or {}).get("kind"),
            "lanes": lanes, "upper_bound": lanes > 1,
            "not_estimated": [t.id for t in results.tasks if t.id not in tasks], "how": how}


def say(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def over_limits(estimate: dict | None, task_limits: dict[str, float],
                submission_limit: float) -> list[tuple[str | None, str]]:
    """(task id or None, warning) for each task whose estimated full grade runs past its
    time limit, and for the whole submission: a student learns it from a quick check, not
    from a timed-out grade hours later."""
    if not estimate:
        return []
    out = []
    about = "at most about" if estimate.get("upper_bound") else "about"
    for tid, seconds in estimate["tasks"].items():
        limit = task_limits.get(tid)
        if limit and seconds > limit:
            out.append((tid, f"At the full budget this task would take {about} "
                             f"{say(seconds)} here, over its time limit of {say(limit)}: it "
                             f"would be stopped and fail. Use fewer epochs, a larger batch "
                             f"or a smaller model, or grade on a GPU."))
    if estimate["full_grade_s"] > submission_limit:
        out.append((None, f"The full grade would take {about} {say(estimate['full_grade_s'])} "
                          f"here, over the submission's time limit of "
                          f"{say(submission_limit)}: the last tasks would not be graded."))
    return out
