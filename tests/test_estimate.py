"""A quick check says how long the full grade would take here; checked against a real
full run of the same tasks on the same (synthetic) data."""
from __future__ import annotations

import grader
from grader.estimate import task_estimate


def _quick_then_full(sub, data, out, trainers):
    quick = grader.check(sub, data=data, tasks="fc,cnn", quick=True, out=out, **trainers)
    full = grader.check(sub, data=data, tasks="fc,cnn", **trainers)
    assert all(len(t.runs) == 1 for t in full.tasks), "a borderline re-run would add seeds"
    measured = sum(t.timings["total_s"] for t in full.tasks)
    return quick, full, sum(quick.estimate["tasks"].values()) / measured


def test_the_quick_checks_estimate_is_within_a_factor_of_1_5_of_a_full_run(
        synthetic_npz, submission, tmp_path, shared_trainers):
    """About 16 s.  On this synthetic data a full run is seconds, most of it one-off costs
    (building graphs), so this checks those parts of the estimate as much as the steps.
    Measured ratios estimate/full: 0.99-1.19 with two lanes, 0.84-1.04 with one.  This
    VM's speed halves for minutes at a time, and a quick run and a full run seconds apart
    can land on either side of such a change, and the tests' other worker shares the
    machine (a Ray cluster, at times): up to two more pairs are timed before failing."""
    ratios = []
    for attempt in range(3):
        quick, full, ratio = _quick_then_full(submission("good.py"), synthetic_npz,
                                              tmp_path / f"quick{attempt}",
                                              shared_trainers)
        ratios.append(round(ratio, 2))
        if 1 / 1.5 <= ratio <= 1.5:
            break
    else:
        raise AssertionError(f"estimate/full-run ratios {ratios}, outside [0.67, 1.5]: "
                             f"{quick.estimate} vs {[t.timings for t in full.tasks]}")
    est = quick.estimate
    assert set(est["tasks"]) == {"fc", "cnn"}
    assert est["full_grade_s"] == round(sum(est["tasks"].values()) + est["child_start_s"], 1)
    saved = grader.load_results(tmp_path / f"quick{len(ratios) - 1}" / "results.json")
    assert saved.estimate == est
    assert full.estimate is None  # a grade has its real times, no estimate


def test_the_estimate_adds_each_one_off_cost_once_and_the_steps_per_epoch():
    """The model in numbers: 1 s to build the training graph, 10 ms a step, no validation
    in the quick run (its graph: half the training graph's), 0.2 s to build the
    prediction graph, which the recheck builds again after a clone of the model."""
    timings = {"first_steps": 2, "first_s": 1.02, "steady_steps": 2, "steady_s": 0.02,
               "val_images": 0, "predict_s": 0.2 + 300 * 0.01 / 3 / 30, "build_s": 0.3,
               "train_s": 1.05, "total_s": 0.3 + 1.05 + 0.2 + 300 * 0.01 / 3 / 30 + 0.1}
    est = task_estimate(timings, epochs=4, batch_size=30, n_train=3000, n_val=600,
                        n_test=900, quick_n_val=0, quick_n_test=300)
    fwd = 0.01 / 3 / 30  # a forward pass per image: a third of a step's share
    expected = (0.3 + 0.1 + 1.0 + 0.5 + 0.2 + (0.3 + 0.2)  # build, other, graphs, recheck
                + 4 * (100 * 0.01 + 600 * fwd) + (900 + 1000) * fwd)
    assert abs(est - expected) < 1e-6, (est, expected)
