"""`grader init`: the starter builds, trains and passes the quick check as .py and .ipynb."""
from __future__ import annotations

from click.testing import CliRunner

import grader
from grader.cli import main
from grader.results import CHECKED


def test_init_writes_and_refuses_to_overwrite(tmp_path):
    target = tmp_path / "lab.py"
    r = CliRunner().invoke(main, ["init", str(target)])
    assert r.exit_code == 0 and target.is_file()
    text = target.read_text()
    for fn in ("build_fc_model", "build_cnn_model", "build_cnn_dropout_model",
               "build_cnn_batchnorm_model", "build_final_model"):
        assert f"def {fn}(input_shape=(32, 32, 3), num_classes=10):" in text
    assert "at least 75% within 25 epochs" in text and "TRAINING = {" in text
    again = CliRunner().invoke(main, ["init", str(target)])
    assert again.exit_code == 2 and "exists already" in again.output


def test_starters_pass_the_quick_check(shared_trainers, synthetic_npz, tmp_path):
    for name in ("lab.py", "lab.ipynb"):
        path = tmp_path / name
        assert CliRunner().invoke(main, ["init", str(path)]).exit_code == 0
        r = grader.check(path, data=synthetic_npz, **shared_trainers, quick=True)
        assert [t.status for t in r.tasks] == [CHECKED] * 5, [t.reason for t in r.tasks]
        assert r.passed and r.points is None and all(t.points == 0 for t in r.tasks)
