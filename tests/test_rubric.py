from pathlib import Path

import pytest

from grader.errors import RubricError
from grader.rubric import load_rubric

REPO = Path(__file__).resolve().parent.parent


def write(tmp_path, text: str) -> Path:
    path = tmp_path / "r.toml"
    path.write_text(text)
    return path


def bundled() -> str:
    return (REPO / "rubrics" / "cifar10.toml").read_text()


def test_bundled_rubric_matches_the_lab():
    r = load_rubric()
    assert r.task_ids == ("fc", "cnn", "cnn_dropout", "cnn_batchnorm", "final")
    assert {t.id: t.threshold for t in r.tasks} == {
        "fc": 0.45, "cnn": 0.62, "cnn_dropout": None, "cnn_batchnorm": None, "final": 0.75}
    assert {t.id: t.max_epochs for t in r.tasks} == {
        "fc": 20, "cnn": 20, "cnn_dropout": 20, "cnn_batchnorm": 20, "final": 25}
    assert r.task("fc").function == "build_fc_model"
    assert r.task("cnn_dropout").same_as == "cnn"
    assert r.validation_fraction == 0.1
    assert [c.id for c in r.comparisons] == ["cnn_vs_fc"]
    assert len(r.sha256) == 64


def test_misspelt_key_is_an_error_with_a_hint(tmp_path):
    path = write(tmp_path, bundled().replace("threshold = 0.45", "treshold = 0.45"))
    with pytest.raises(RubricError) as info:
        load_rubric(path)
    assert "unknown key 'treshold'" in info.value.message
    assert "[tasks.fc]" in info.value.message
    assert info.value.hint == "Did you mean 'threshold'?"


def test_unknown_top_level_key(tmp_path):
    path = write(tmp_path, "validation_fractoin = 0.2\n" + bundled())
    with pytest.raises(RubricError, match="unknown key 'validation_fractoin'") as info:
        load_rubric(path)
    assert "validation_fraction" in info.value.hint


def test_custom_code_policy_is_hold_or_fail(tmp_path):
    assert load_rubric().fairness.custom_code == "hold"
    path = write(tmp_path, bundled().replace('custom_code = "hold"', 'custom_code = "hodl"'))
    with pytest.raises(RubricError, match=r"custom_code must be \"hold\" or \"fail\". "
                                          r"Received: 'hodl' \(did you mean 'hold'\?\)"):
        load_rubric(path)


def test_threshold_given_as_percent_is_rejected_with_the_fix(tmp_path):
    path = write(tmp_path, bundled().replace("threshold = 0.62", "threshold = 62"))
    with pytest.raises(RubricError, match="between 0 and 1. Received: 62") as info:
        load_rubric(path)
    assert info.value.hint == "Write 0.62 for 62%."


def test_missing_required_field(tmp_path):
    path = write(tmp_path, bundled().replace('function = "build_cnn_model"\n', ""))
    with pytest.raises(RubricError, match=r"\[tasks.cnn\]: missing required key 'function'"):
        load_rubric(path)


def test_wrong_type(tmp_path):
    path = write(tmp_path, bundled().replace("max_epochs = 25", 'max_epochs = "25"'))
    with pytest.raises(RubricError, match="expected an integer. Received: '25'"):
        load_rubric(path)


def test_epochs_over_max_epochs(tmp_path):
    path = write(tmp_path, bundled().replace("\nepochs = 25\n", "\nepochs = 30\n"))
    with pytest.raises(RubricError, match="epochs <= max_epochs"):
        load_rubric(path)


def test_same_as_must_name_a_task(tmp_path):
    path = write(tmp_path, bundled().replace('same_as = "cnn"', 'same_as = "cnnn"'))
    with pytest.raises(RubricError, match="same_as names no other task: 'cnnn'") as info:
        load_rubric(path)
    assert info.value.hint == "Did you mean 'cnn'?"


def test_comparison_must_name_tasks(tmp_path):
    path = write(tmp_path, bundled().replace('baseline = "fc"', 'baseline = "fully"'))
    with pytest.raises(RubricError, match="baseline names no task: 'fully'"):
        load_rubric(path)


def test_invalid_toml_and_missing_file(tmp_path):
    with pytest.raises(RubricError, match="not valid TOML"):
        load_rubric(write(tmp_path, "id = \n"))
    with pytest.raises(RubricError, match="Rubric file not found"):
        load_rubric(tmp_path / "nope.toml")
