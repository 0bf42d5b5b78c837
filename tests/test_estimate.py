"""A quick check says how long the full grade would take here; checked against a real
full run of the same tasks on the same (synthetic) data."""
from __future__ import annotations

import pytest

import grader


# Timing-sensitive: this VM's speed halves for minutes at a time, and a quick run and a
# full run seconds apart can land on either side of such a change (a clean-clone CI run
# measured 0.64x once, passing runs 0.8-1.2x). Opt-in until issue #17's estimate is
# calibrated over repeats: python -m pytest -m slow tests/test_estimate.py
@pytest.mark.slow
def test_the_quick_checks_estimate_is_within_a_factor_of_1_5_of_a_full_run(
        synthetic_npz, submission, tmp_path):
    quick = grader.check(submission("good.py"), data=synthetic_npz, tasks="fc,cnn",
                         quick=True, out=tmp_path / "quick")
    est = quick.estimate
    assert est is not None and set(est["tasks"]) == {"fc", "cnn"}
    assert est["full_grade_s"] == round(sum(est["tasks"].values()) + est["child_start_s"], 1)
    full = grader.check(submission("good.py"), data=synthetic_npz, tasks="fc,cnn")
    assert all(len(t.runs) == 1 for t in full.tasks), "a borderline re-run would add seeds"
    measured = sum(t.timings["total_s"] for t in full.tasks)
    estimated = sum(est["tasks"].values())
    assert 1 / 1.5 <= estimated / measured <= 1.5, (est, {t.id: t.timings for t in full.tasks})
    saved = grader.load_results(tmp_path / "quick" / "results.json")
    assert saved.estimate == est
    assert full.estimate is None  # a grade has its real times, no estimate
