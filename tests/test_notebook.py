"""Notebook submissions: graded exactly as the same code in a .py file."""
from __future__ import annotations

import nbformat
import pytest

import grader
from grader.notebook import extract
from grader.results import ERROR, PASSED

from conftest import SUBMISSIONS


def make_notebook(path, cells):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# CIFAR-10 lab")] + [
        nbformat.v4.new_code_cell(c) for c in cells]
    nbformat.write(nb, str(path))
    return path


def good_notebook(path):
    """good.py's code split over cells, among the cells a real lab notebook has."""
    return make_notebook(path, [
        "%matplotlib inline\n!pip install -q keras",
        "import keras\nfrom keras import layers\nimport matplotlib.pyplot as plt",
        "(x_train, y_train), (x_test, y_test) = keras.datasets.cifar10.load_data()\n"
        "x_train = x_train.astype('float32') / 255",
        (SUBMISSIONS / "good.py").read_text(),
        "model = build_fc_model()\nhistory = model.fit(x_train, y_train, epochs=20)\n"
        "plt.plot(history.history['accuracy'])\nplt.show()",
        "%%bash\necho hello",
        "model.evaluate(x_test, y_test)",
    ])


def test_extraction_keeps_definitions_and_skips_the_rest(tmp_path):
    ex = extract(good_notebook(tmp_path / "lab.ipynb"))
    assert ex.taken == [2, 4]
    skipped = {s["cell"]: s["why"] for s in ex.skipped}
    assert skipped[3] == "data loading"
    assert "training" in skipped[5] and "plotting" in skipped[5]
    assert skipped[6] == "a cell magic" and skipped[7] == "evaluation"
    assert "load_data" not in ex.source and "pip install" not in ex.source
    assert "TRAINING = {" in ex.source and "def build_final_model" in ex.source
    assert ex.top_level_models == [] and ex.unresolved == []  # model = build_fc_model() is a call


def test_notebook_and_py_get_the_same_verdicts_and_numbers(synthetic_npz, tmp_path):
    nb = good_notebook(tmp_path / "lab.ipynb")
    a = grader.check(nb, data=synthetic_npz, tasks="fc,cnn")
    b = grader.check(SUBMISSIONS / "good.py", data=synthetic_npz, tasks="fc,cnn")
    assert [t.status for t in a.tasks] == [t.status for t in b.tasks] == [PASSED, PASSED]
    for task in ("fc", "cnn"):
        assert a.task(task).history == b.task(task).history
        assert a.task(task).test_accuracy == b.task(task).test_accuracy
    assert a.submission["kind"] == "notebook"
    assert a.submission["notebook"]["cells_taken"] == [2, 4]


def test_top_level_model_without_a_function_gets_a_wrap_hint(synthetic_npz, tmp_path):
    nb = make_notebook(tmp_path / "inline.ipynb", [
        "import keras\nfrom keras import layers, Input, Model",
        "x_in = Input(shape=(32, 32, 3))\nx = layers.Flatten()(x_in)\n"
        "x = layers.Dense(10, activation='softmax')(x)\nmodel = Model(x_in, x)",
        "model.compile('adam', 'sparse_categorical_crossentropy')\nmodel.fit(x_train, y_train)",
    ])
    fc = grader.check(nb, data=synthetic_npz, tasks="fc").task("fc")
    assert fc.status == ERROR
    assert "build_fc_model is not defined in inline.ipynb" in fc.reason
    assert "Cell 2 builds a model at the top level instead. Wrap it in the function: " \
           "def build_fc_model(input_shape=(32, 32, 3), num_classes=10)" in fc.reason


def test_name_set_only_in_a_skipped_cell(synthetic_npz, tmp_path):
    nb = make_notebook(tmp_path / "names.ipynb", [
        "import keras\nfrom keras import layers",
        "(X_train, y_train), _ = keras.datasets.cifar10.load_data()",
        "def build_fc_model():\n"
        "    return keras.Sequential([keras.Input(shape=X_train.shape[1:]), layers.Flatten(),\n"
        "                             layers.Dense(10, activation='softmax')])",
    ])
    r = grader.check(nb, data=synthetic_npz, tasks="fc")
    assert any("build_fc_model (cell 3) uses 'X_train', which it never defines; cell 2 sets it"
               in n.message and "input_shape argument" in n.message for n in r.notes)
    fc = r.task("fc")
    assert fc.status == ERROR
    assert "NameError while building the model (cell 3)" in fc.reason
    assert "'X_train' is set in cell 2, which the grader does not run" in fc.reason


def test_syntax_error_in_a_cell_names_the_cell(synthetic_npz, tmp_path):
    nb = make_notebook(tmp_path / "syntax.ipynb", ["import keras", "def build_fc_model(:\n  pass"])
    fc = grader.check(nb, data=synthetic_npz, tasks="fc").task("fc")
    assert fc.status == ERROR and "SyntaxError" in fc.reason and "(cell 2)" in fc.reason


def test_unreadable_notebook_is_a_usage_error(tmp_path):
    bad = tmp_path / "bad.ipynb"
    bad.write_text("{not json")
    with pytest.raises(grader.GraderError, match="is not a readable notebook"):
        grader.check(bad, data=tmp_path)


def test_cli_output_in_a_notebook_cell_has_no_control_codes(synthetic_npz, tmp_path):
    """`!grader check lab.ipynb --quick` in Colab runs the CLI with its output on a pipe."""
    import subprocess
    import sys
    nb = good_notebook(tmp_path / "lab.ipynb")
    proc = subprocess.run([sys.executable, "-m", "grader.cli", "check", str(nb), "--quick",
                           "--tasks", "fc", "--data", str(synthetic_npz)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout + proc.stderr
    assert "\x1b" not in text and "\r" not in text
    assert "QUICK CHECK, NOT A GRADE" in text and "fc" in text
