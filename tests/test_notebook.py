"""Notebook submissions: graded exactly as the same code in a .py file."""
from __future__ import annotations

import nbformat
import pytest

import grader
from grader.notebook import extract
from grader.results import ERROR, PASSED

from conftest import SUBMISSIONS


FC_BUILDER = ("def build_fc_model(input_shape=(32, 32, 3), num_classes=10):\n"
              "    return keras.Sequential([keras.Input(shape=input_shape), layers.Flatten(),\n"
              "                             layers.Dense(64, activation='relu'),\n"
              "                             layers.Dense(num_classes, activation='softmax')])")


def colab_notebook(path, cells, counts=None, numbered=True):
    """Code cells run in order (In [11], In [12] ... unless ``counts`` says otherwise), and
    markdown cells where an item is ('md', text)."""
    nb = nbformat.v4.new_notebook()
    n = 0
    for c in cells:
        if isinstance(c, tuple):
            nb.cells.append(nbformat.v4.new_markdown_cell(c[1]))
        else:
            n += 1
            count = (counts or {}).get(n, n + 10) if numbered else None
            nb.cells.append(nbformat.v4.new_code_cell(c, execution_count=count))
    nbformat.write(nb, str(path))
    return path


def make_notebook(path, cells):
    """A notebook never run: code cells without execution counts."""
    return colab_notebook(path, [("md", "# CIFAR-10 lab"), *cells], numbered=False)


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


def test_notebook_and_py_get_the_same_verdicts_and_numbers(
        shared_trainers, synthetic_npz, tmp_path):
    nb = good_notebook(tmp_path / "lab.ipynb")
    a = grader.check(nb, data=synthetic_npz, **shared_trainers, tasks="fc")
    b = grader.check(SUBMISSIONS / "good.py", data=synthetic_npz, **shared_trainers, tasks="fc")
    assert [t.status for t in a.tasks] == [t.status for t in b.tasks] == [PASSED]
    assert a.task("fc").history == b.task("fc").history
    assert a.task("fc").test_accuracy == b.task("fc").test_accuracy
    assert a.submission["kind"] == "notebook"
    assert a.submission["notebook"]["cells_taken"] == [2, 4]


def test_top_level_model_without_a_function_gets_a_wrap_hint(
        shared_trainers, synthetic_npz, tmp_path):
    nb = make_notebook(tmp_path / "inline.ipynb", [
        "import keras\nfrom keras import layers, Input, Model",
        "x_in = Input(shape=(32, 32, 3))\nx = layers.Flatten()(x_in)\n"
        "x = layers.Dense(10, activation='softmax')(x)\nmodel = Model(x_in, x)",
        "model.compile('adam', 'sparse_categorical_crossentropy')\nmodel.fit(x_train, y_train)",
    ])
    fc = grader.check(nb, data=synthetic_npz, **shared_trainers, tasks="fc").task("fc")
    assert fc.status == ERROR
    assert "build_fc_model is not defined in inline.ipynb" in fc.reason
    assert "Cell 2 builds a model at the top level instead. Wrap it in the function: " \
           "def build_fc_model(input_shape=(32, 32, 3), num_classes=10)" in fc.reason


def test_name_set_only_in_a_skipped_cell(shared_trainers, synthetic_npz, tmp_path):
    nb = make_notebook(tmp_path / "names.ipynb", [
        "import keras\nfrom keras import layers",
        "(X_train, y_train), _ = keras.datasets.cifar10.load_data()",
        "def build_fc_model():\n"
        "    return keras.Sequential([keras.Input(shape=X_train.shape[1:]), layers.Flatten(),\n"
        "                             layers.Dense(10, activation='softmax')])",
    ])
    r = grader.check(nb, data=synthetic_npz, **shared_trainers, tasks="fc")
    assert any("build_fc_model (cell 3, line 1) uses 'X_train', which it never defines; "
               "cell 2 sets it"
               in n.message and "input_shape argument" in n.message for n in r.notes)
    fc = r.task("fc")
    assert fc.status == ERROR
    assert "NameError while building the model (cell 3, line 2)" in fc.reason
    assert "'X_train' is set in cell 2, which the grader does not run" in fc.reason


def test_syntax_error_in_a_cell_names_the_cell(shared_trainers, synthetic_npz, tmp_path):
    nb = make_notebook(tmp_path / "syntax.ipynb", ["import keras", "def build_fc_model(:\n  pass"])
    fc = grader.check(nb, data=synthetic_npz, **shared_trainers, tasks="fc").task("fc")
    assert fc.status == ERROR and "SyntaxError" in fc.reason and "(cell 2, line 1)" in fc.reason


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


# -- real students' notebooks (issue 16) ---------------------------------------------------

def test_compile_in_a_later_cell_is_the_students_configuration(
        shared_trainers, synthetic_npz, tmp_path):
    nb = colab_notebook(tmp_path / "lab.ipynb", [
        "import keras\nfrom keras import layers\nfrom keras.optimizers import SGD",
        "TRAINING = {'fc': {'epochs': 2}}",
        FC_BUILDER,
        "model = build_fc_model()\nmodel.summary()",
        "model.compile(optimizer=SGD(learning_rate=0.05), loss='categorical_crossentropy',\n"
        "              metrics=['accuracy'])",
        "history = model.fit(x_train, keras.utils.to_categorical(y_train), epochs=20)",
    ])
    fc = grader.check(nb, data=synthetic_npz, **shared_trainers, tasks="fc").task("fc")
    assert fc.compile["compiled_by"] == "student"
    assert fc.compile["optimizer"]["name"] == "SGD"
    assert fc.compile["optimizer"]["learning_rate"] == pytest.approx(0.05)
    assert fc.compile["loss"]["name"] == "categorical_crossentropy" and fc.compile["loss"]["one_hot"]
    note = [f for f in fc.findings if f.check == "compile"][0]
    assert note.ok and note.message.startswith("Compiled as in cell 5, In [15], line 1:")


def test_a_compile_that_cannot_be_taken_is_a_warning_naming_the_cell(
        shared_trainers, synthetic_npz, tmp_path):
    nb = colab_notebook(tmp_path / "lab.ipynb", [
        "import keras\nfrom keras import layers",
        FC_BUILDER,
        "opt = make_my_optimizer()  # defined nowhere the grader runs",
        "model = build_fc_model()\nmodel.compile(optimizer=opt, loss='sparse_categorical_crossentropy')",
    ])
    fc = grader.check(nb, data=synthetic_npz, **shared_trainers, tasks="fc", quick=True).task("fc")
    assert fc.compile["compiled_by"] == "grader"
    warn = [f for f in fc.findings if f.check == "compile"][0]
    assert not warn.ok and warn.severity == "warning"
    assert "The compile call in cell 4, In [14], line 2" in warn.message
    assert "NameError" in warn.message and "grader's default (Adam" in warn.message


COLAB_CELLS = [
    "!wget https://example.com/weights/model_simple.h5 \\\n    -O model_simple.h5\n"
    "%matplotlib inline\n!pip install -q keras",
    "%%capture\n!nvidia-smi",
    "import keras\nfrom keras import layers\nfrom google.colab import files\n"
    "from sklearn.metrics import confusion_matrix\nimport matplotlib.pyplot as plt",
    "files_here = !ls\nget_ipython().run_line_magic('load_ext', 'tensorboard')",
    "def build_fc_model(input_shape=(32, 32, 3), num_classes=10):\n"
    "    if False:\n"
    "        !echo never\n"
    "    return keras.Sequential([keras.Input(shape=input_shape), layers.Flatten(),\n"
    "                             layers.Dense(num_classes, activation='softmax')])",
    "model = build_fc_model()\nmodel.fit(x_train, y_train)\n"
    "cm = confusion_matrix(y_test, model.predict(x_test).argmax(1))",
]


def test_colab_shell_lines_magics_and_stray_imports(shared_trainers, synthetic_npz, tmp_path):
    nb = colab_notebook(tmp_path / "colab.ipynb", COLAB_CELLS)
    ex = extract(nb)
    assert "wget" not in ex.source and "-O model_simple" not in ex.source
    assert {"cell": 2, "why": "a cell magic"} in ex.skipped
    r = grader.check(nb, data=synthetic_npz, **shared_trainers, tasks="fc", quick=True)
    fc = r.task("fc")
    assert fc.status == "checked", fc.reason
    notes = [n.message for n in r.notes if n.check == "imports"]
    assert any(m.startswith("`from google.colab import files` (cell 3, In [13], line 3) "
                            "failed (ModuleNotFoundError: No module named 'google") and
               m.endswith("no builder uses it, so it was skipped.") for m in notes), notes
    assert any("`from sklearn.metrics import confusion_matrix`" in m for m in notes) or \
        _has("sklearn")


def _has(module: str) -> bool:
    import importlib.util
    return importlib.util.find_spec(module) is not None


def test_a_keras2_import_a_builder_needs_names_its_keras3_replacement(
        shared_trainers, synthetic_npz, tmp_path):
    nb = colab_notebook(tmp_path / "k2.ipynb", [
        "import keras\nfrom keras import layers\n"
        "from keras.layers.core import Dense\n"
        "from keras.utils.np_utils import to_categorical",
        "def build_fc_model(input_shape=(32, 32, 3), num_classes=10):\n"
        "    return keras.Sequential([keras.Input(shape=input_shape), layers.Flatten(),\n"
        "                             Dense(num_classes, activation='softmax')])",
        "def build_cnn_model(input_shape=(32, 32, 3), num_classes=10):\n"
        "    return keras.Sequential([keras.Input(shape=input_shape),\n"
        "                             layers.Conv2D(4, 4, strides=4), layers.Flatten(),\n"
        "                             layers.Dense(num_classes, activation='softmax')])",
    ])
    r = grader.check(nb, data=synthetic_npz, **shared_trainers, tasks="fc,cnn", quick=True)
    fc = r.task("fc")
    assert fc.status == "error"
    assert fc.reason.startswith("build_fc_model needs 'Dense' from `from keras.layers.core "
                                "import Dense` (cell 1, In [11], line 3), which cannot be "
                                "imported here: ModuleNotFoundError")
    assert fc.reason.endswith("`keras.layers.core` is a Keras 2 path that Keras 3 removed: "
                              "use keras.layers instead.")
    assert "site-packages" not in fc.reason
    assert r.task("cnn").status == "checked"  # the other builder does not need it
    assert any("keras.utils.np_utils" in n.message and "skipped" in n.message
               for n in r.notes)


def test_did_you_mean_never_proposes_another_required_function(tmp_path):
    from grader.rubric import load_rubric
    from grader.submission import load_submission, missing_function_message
    rubric = load_rubric(None)
    sub = load_submission(colab_notebook(tmp_path / "l.ipynb", ["import keras", FC_BUILDER]))
    msg = missing_function_message(rubric.task("final"), rubric,
                                   ["build_fc_model", "build_cnn_model", "build_final_modle"],
                                   sub)
    assert "Did you mean to name 'build_final_modle' 'build_final_model'?" in msg
    msg = missing_function_message(rubric.task("final"), rubric,
                                   ["build_fc_model", "build_cnn_model"], sub)
    assert "Did you mean" not in msg


def test_the_wrap_hint_names_the_cell_that_matches_the_task(tmp_path):
    from grader.rubric import load_rubric
    from grader.submission import load_submission, missing_function_message
    rubric = load_rubric(None)
    nb = colab_notebook(tmp_path / "inline.ipynb", [
        "import keras\nfrom keras import layers",
        ("md", "## Q2: a fully connected model"),
        "fc = keras.Sequential([layers.Flatten(), layers.Dense(10, activation='softmax')])",
        ("md", "## Q4: a CNN"),
        "cnn = keras.Sequential([layers.Conv2D(8, 3), layers.Flatten(), layers.Dense(10)])",
        ("md", "## Q8: with batch normalisation"),
        "bn = keras.Sequential([layers.Conv2D(8, 3), layers.BatchNormalization(),\n"
        "                       layers.Flatten(), layers.Dense(10)])",
    ])
    sub = load_submission(nb)
    def hint(tid):
        return missing_function_message(rubric.task(tid), rubric, [], sub)
    assert "Cell 2 (In [12]) builds a model at the top level" in hint("fc")
    assert "Cell 3 (In [13]) builds a model at the top level" in hint("cnn")
    assert "Cell 4 (In [14]) builds a model at the top level" in hint("cnn_batchnorm")
    assert "No top-level model in the notebook looks like Q6" in hint("cnn_dropout")


def test_errors_name_the_cell_as_the_student_sees_it(shared_trainers, synthetic_npz, tmp_path):
    nb = colab_notebook(tmp_path / "err.ipynb", [
        "import keras\nfrom keras import layers\n\n\n",
        "# my model\n\n"
        "def build_fc_model(input_shape=(32, 32, 3), num_classes=10):\n"
        "    units = 512 // 0\n"
        "    return None",
    ], counts={1: 3, 2: 7})
    fc = grader.check(nb, data=synthetic_npz, **shared_trainers, tasks="fc", quick=True).task("fc")
    assert "ZeroDivisionError while building the model (cell 2, In [7], line 4)" in fc.reason
    assert fc.error["frames"][-1]["line"] == 4 and fc.error["frames"][-1]["cell"] == 2


def test_unresolved_names_only_for_builders_with_advice_that_fits(tmp_path):
    from grader.imports import submission_notes
    from grader.rubric import load_rubric
    from grader.submission import load_submission
    nb = colab_notebook(tmp_path / "names.ipynb", [
        "import keras\nfrom keras import layers",
        "(x_train, y_train), _ = keras.datasets.cifar10.load_data()\nn_classes = len(set(y_train.ravel()))",
        "def train(model):\n    return model.fit(x_train, y_train, epochs=3)",
        "def head():\n    return layers.Dense(n_classes, activation='softmax')",
        "def build_fc_model():\n"
        "    return keras.Sequential([keras.Input(shape=x_train.shape[1:]), layers.Flatten(),\n"
        "                             head()])",
    ])
    sub = load_submission(nb)
    notes = [n.message for n in submission_notes(
        sub, load_rubric(None), {"callables": ["build_fc_model", "head", "train"]})]
    assert len(notes) == 2, notes  # nothing about train(), which no builder calls
    by_name = {("x_train" if "'x_train'" in m else "n_classes"): m for m in notes}
    assert by_name["x_train"].startswith("build_fc_model (cell 5, In [15], line 1) uses "
                                         "'x_train', which it never defines; cell 2 (In [12]) "
                                         "sets it")
    assert by_name["x_train"].endswith("Use the input_shape argument instead: "
                                       "def build_...(input_shape=(32, 32, 3), "
                                       "num_classes=10).")
    assert by_name["n_classes"].startswith("head (cell 4, In [14], line 1) uses 'n_classes'")
    assert "Use the num_classes argument instead" in by_name["n_classes"]


SCRIPT = '''"""Exported from Colab: loads data, trains and plots at the top level."""
import keras
from keras import layers
import matplotlib.pyplot as plt

(x_train, y_train), (x_test, y_test) = keras.datasets.cifar10.load_data()
x_train = x_train / 255.0

TRAINING = {"fc": {"epochs": 3}}


def build_fc_model(input_shape=(32, 32, 3), num_classes=10):
    return keras.Sequential([keras.Input(shape=input_shape), layers.Flatten(),
                             layers.Dense(64, activation="relu"),
                             layers.Dense(num_classes, activation="softmax")])


model = build_fc_model()
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
history = model.fit(x_train, y_train, epochs=20, validation_split=0.1)
plt.plot(history.history["accuracy"])
plt.show()
'''


def test_a_script_with_top_level_training_grades_like_its_notebook(
        shared_trainers, synthetic_npz, tmp_path):
    script = tmp_path / "lab.py"
    script.write_text(SCRIPT)
    nb = colab_notebook(tmp_path / "lab.ipynb", [SCRIPT])
    a = grader.check(script, data=synthetic_npz, **shared_trainers, tasks="fc")
    b = grader.check(nb, data=synthetic_npz, **shared_trainers, tasks="fc")
    assert a.task("fc").status == b.task("fc").status == PASSED, a.task("fc").reason
    assert a.task("fc").history == b.task("fc").history
    assert a.task("fc").test_accuracy == b.task("fc").test_accuracy
    skipped = a.submission["script"]["cells_skipped"]
    assert {"cell": 1, "line": 6, "why": "data loading"} in skipped
    assert {"cell": 1, "line": 20, "why": "training"} in skipped
    assert a.submission["kind"] == "python"
    assert a.task("fc").compile["compiled_by"] == "student"  # the top-level compile


def test_quick_runs_read_as_quick_runs(shared_trainers, synthetic_npz, tmp_path):
    from grader.html_report import render_report
    r = grader.check(SUBMISSIONS / "good.py", data=synthetic_npz, **shared_trainers,
                     tasks="fc", quick=True, out=tmp_path)
    html = render_report(r)
    assert "underfitting" not in html and "still rising" not in html.lower()
    assert "I0000" not in r.task("fc").output_tail and "oneDNN" not in r.task("fc").output_tail


def test_a_file_that_fails_to_import_is_imported_once(shared_trainers, synthetic_npz, submission):
    r = grader.check(submission("syntax_error.py"), data=synthetic_npz, **shared_trainers,
                     tasks="fc,cnn,final")
    assert [t.status for t in r.tasks] == [ERROR] * 3
    assert r.environment["builder_starts"] == 1
