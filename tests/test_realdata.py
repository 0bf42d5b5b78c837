"""Real CIFAR-10: enabled when GRADER_CIFAR10 names it (.ci/run sets it)."""
from __future__ import annotations

import pytest

import grader
from grader.results import CHECKED

from conftest import REPO, real_data_path

pytestmark = [pytest.mark.realdata,
              pytest.mark.skipif(real_data_path() is None,
                                 reason="set GRADER_CIFAR10 to real CIFAR-10 (a "
                                        "cifar-10-batches-py folder, archive or .npz)")]


@pytest.fixture(scope="module")
def real_subset(tmp_path_factory):
    """The real data as the grader loads it, and the first 6,000 training and 2,000 test
    images of it as an .npz: a smoke test of real pixels that trains in seconds (all
    45,000 images are what the opt-in slow test trains on)."""
    import numpy as np

    from grader.data import load_dataset

    full = load_dataset(real_data_path(), (32, 32, 3), 10, "cifar10")
    path = tmp_path_factory.mktemp("real") / "subset.npz"
    np.savez(path, x_train=full.x_train[:6000], y_train=full.y_train[:6000],
             x_test=full.x_test[:2000], y_test=full.y_test[:2000])
    return full, path


def test_simple_fc_two_epochs_on_real_cifar10(real_subset, submission, tmp_path):
    full, subset = real_subset
    assert len(full.x_train) == 50000 and len(full.x_test) == 10000
    r = grader.check(submission("simple_fc.py"), tasks="fc", data=subset, out=tmp_path)
    fc = r.task("fc")
    assert r.data["n_train_used"] == 5400 and r.data["n_val"] == 600
    assert fc.epochs_run == 2
    assert fc.test_accuracy > 0.2, fc.reason  # chance is 0.10 (0.25 measured here)
    assert fc.status == "failed" or fc.status == "passed", fc.reason  # never held
    assert fc.reinit_agreement is not None and fc.reinit_agreement < 0.5
    assert sum(map(sum, fc.confusion_matrix)) == 2000
    assert (tmp_path / "results.json").is_file()


def test_reference_quick_check_on_real_cifar10():
    """The smallest, a CNN and the largest of the reference's models (all five:
    benchmarks/quick.py)."""
    r = grader.check(REPO / "reference" / "cifar10_lab.py", quick=True, tasks="fc,cnn,final")
    assert [t.status for t in r.tasks] == [CHECKED] * 3, [t.reason for t in r.tasks]
    assert r.passed and r.points is None  # a pre-check: every task checked, no grade
    assert r.environment["sandbox"]["kind"] in ("bubblewrap", "landlock")


@pytest.mark.slow
def test_reference_fc_keeps_its_margin_at_full_budget():
    """Opt in with -m slow: the reference FC at its full budget (about 2 minutes here)."""
    r = grader.check(REPO / "reference" / "cifar10_lab.py", tasks="fc", seed=1)
    assert r.task("fc").test_accuracy >= 0.48
