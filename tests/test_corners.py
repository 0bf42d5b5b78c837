"""Corners a review found: valid Python stays valid (brackets, strings, automagic,
__future__), TRAINING written as dict(...), Keras 2 arguments, error lines mapped once,
colliding ids, the file Gradescope grades, resume with nothing left to do, and a grader
upgrade or a transient failure that must not keep an old verdict."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

import grader
from grader.batch import discover
from grader.cli import main
from grader.jobs import job_identity
from grader.imports import keras2_argument_hint, submission_notes
from grader.notebook import clean_ipython, extract
from grader.options import GradeOptions
from grader.replies import import_failure
from grader.rubric import load_rubric
from grader.submission import load_submission

from conftest import REPO
from test_notebook import FC_BUILDER, colab_notebook


@pytest.mark.parametrize("code", [
    "def f(a, b):\n    x = (a\n         % b)\n    return (a\n            != b)\n",
    "s = '''\n!not a shell line\n%not a magic\n'''\n",
    "x = [1,\n     # !a comment\n     2]\n",
    "y = {'k':\n     not True}\n",
    "z = 1 \\\n    % 2\n",
])
def test_valid_python_stays_as_written(code):
    assert clean_ipython(code) == (code.rstrip("\n"), False)
    compile(code, "cell", "exec")


def test_ipython_lines_only_at_the_start_of_a_logical_line():
    src = ("!pip install -q keras \\\n    tensorflow\npip install keras\n%pip install x\n"
           "conda install -y numpy\nx = (1 +\n     2)\n    !echo inside a block\n")
    out, magic = clean_ipython(src)
    assert not magic
    assert out.splitlines() == ["pass", "", "pass", "pass", "pass", "x = (1 +", "     2)",
                                "    pass"]
    # A name that is also a magic stays Python where the line is Python.
    assert clean_ipython("time = 3\nenv = dict(a=1)") == ("time = 3\nenv = dict(a=1)", False)


def test_automagic_pip_cells_and_future_imports_grade(tmp_path):
    nb = colab_notebook(tmp_path / "lab.ipynb", [
        "pip install keras",
        "from __future__ import annotations\nimport keras\nfrom keras import layers",
        "TRAINING = dict(fc=dict(epochs=2, batch_size=64))",
        FC_BUILDER,
    ])
    ex = extract(nb)
    compile(ex.source, "lab", "exec")  # the future import hoisted, the pip line a pass
    assert ex.source.startswith("from __future__ import annotations\n")
    assert "TRAINING = dict(fc=dict(epochs=2, batch_size=64))" in ex.source
    assert ex.training_skipped is None


def test_a_training_table_the_grader_cannot_read_is_said_loudly(tmp_path):
    path = tmp_path / "lab.py"
    path.write_text("import sys\nimport keras\nEPOCHS = int(sys.argv[-1])\n"
                    "TRAINING = {'fc': {'epochs': load_epochs()}}\n" + FC_BUILDER + "\n")
    sub = load_submission(path)
    assert sub.notebook.training_skipped["line"] == 4
    notes = submission_notes(sub, load_rubric(None), {"callables": ["build_fc_model"],
                                                      "training": None})
    (note,) = [n for n in notes if n.check == "training"]
    assert "line 4" in note.message and "rubric's epochs and batch size" in note.message
    assert note.severity == "warning"


def test_a_keras2_argument_names_its_keras3_form():
    assert "learning_rate= instead of lr=" in keras2_argument_hint(
        "Argument(s) not recognized: {'lr': 0.0001}")
    assert "schedule" in keras2_argument_hint("Argument(s) not recognized: {'decay': 1e-06}")
    assert keras2_argument_hint("Argument(s) not recognized: {'foo': 1}") == ""
    assert keras2_argument_hint("some other error") == ""


def test_an_import_failure_names_the_same_line_for_every_task(tmp_path):
    path = tmp_path / "lab.ipynb"
    colab_notebook(path, ["import keras", "x = 1\n\n\nraise_here = 1 / 0 if False else None",
                          FC_BUILDER + "\n\nboom = undefined_name_here"])
    sub = load_submission(path)
    line = len(sub.notebook.source.splitlines()) - 1  # the module line of the last statement
    imported = {"ok": False, "error": {"type": "NameError", "message": "x", "frames": [
        {"line": line, "function": "<module>", "code": "boom"}]}}
    first, err1 = import_failure(imported, sub, 60)
    second, err2 = import_failure(imported, sub, 60)
    assert "(cell 3, In [13], line " in first
    assert first == second and err1 == err2
    assert imported["error"]["frames"][0]["line"] == line  # the message itself is untouched


def test_colliding_ids_each_get_their_own(tmp_path):
    for name in ("alice-2.py", "alice.ipynb", "alice.py"):
        (tmp_path / name).write_text("x = 1\n")
    entries, notes = discover([tmp_path])
    ids = [e.student for e in entries]
    assert len(ids) == len(set(ids)) == 3 and "alice-2" in ids and "alice" in ids


def test_a_folder_is_graded_by_the_file_a_class_batch_would_take(tmp_path):
    """Gradescope's run_autograder grades the submission folder: lab.py, not helpers.py,
    and never a copy in .ipynb_checkpoints/ or __MACOSX/."""
    folder = tmp_path / "submission"
    (folder / ".ipynb_checkpoints").mkdir(parents=True)
    (folder / "__MACOSX").mkdir()
    (folder / "helpers.py").write_text("X = 1\n")
    (folder / "lab.py").write_text("import helpers\n")
    (folder / ".ipynb_checkpoints" / "lab-checkpoint.py").write_text("x = 1\n")
    (folder / "__MACOSX" / "lab.py").write_text("x = 2\n")
    sub = load_submission(folder)
    assert sub.path == (folder / "lab.py").resolve()
    assert sub.siblings == {"helpers.py": b"X = 1\n"}
    entries, _ = discover([tmp_path])
    assert [e.student for e in entries] == ["submission"]  # __MACOSX is no student
    script = (REPO / "grader" / "templates" / "gradescope" / "run_autograder.j2").read_text()
    assert '"$GRADER" check "$ROOT/submission"' in script


def test_report_on_a_json_array_is_a_usage_error(tmp_path):
    path = tmp_path / "results.json"
    path.write_text("[1, 2]")
    r = CliRunner().invoke(main, ["report", str(path)])
    assert r.exit_code == 2 and "Expected a JSON object" in r.output, r.output


def test_the_job_names_the_grader_version():
    """An upgrade that fixes a verdict regrades: the old verdicts are another job's."""
    job = job_identity(GradeOptions(), load_rubric(None), "sha", "fp")
    assert job["grader_version"] == grader.__version__


def test_resume_with_everything_done_returns_the_run_as_it_was(
        shared_trainers, synthetic_npz, submission, tmp_path, monkeypatch):
    first = grader.check(submission("good.py"), data=synthetic_npz, **shared_trainers,
                         tasks="fc", quick=True, out=tmp_path)
    saved = (tmp_path / "results.json").read_text()

    def no_child(*args, **kwargs):
        raise AssertionError("a child was started for nothing")

    from grader import lanes
    monkeypatch.setattr(lanes.Processes, "make", no_child)
    again = grader.check(submission("good.py"), data=synthetic_npz, **shared_trainers,
                         tasks="fc", quick=True, out=tmp_path, resume=True)
    assert again.to_dict() == first.to_dict()
    assert again.environment["sandbox"] and again.environment["device"]
    assert (tmp_path / "results.json").read_text() == saved
    assert json.loads(saved)["environment"]["sandbox"] == first.environment["sandbox"]


# ---- notebooks in the styles of real students' work -----------------------------------

CNN_BUILDER = ("def build_cnn_model(input_shape=(32, 32, 3), num_classes=10):\n"
               "    inp = keras.Input(shape=input_shape)\n"
               "    x = layers.Conv2D(8, 3, activation='relu')(inp)\n"
               "    x = layers.Flatten()(x)\n"
               "    return keras.Model(inp, layers.Dense(num_classes, activation='softmax')(x))")


def test_each_compile_belongs_to_the_builder_called_just_before_it(tmp_path):
    """A functional-API notebook: `model` bound three times, a compile in the cell after
    each; the last one compiles a top-level model, not a builder's."""
    nb = colab_notebook(tmp_path / "lab.ipynb", [
        "import keras\nfrom keras import layers", FC_BUILDER, CNN_BUILDER,
        "model = build_fc_model()",
        "model.compile(optimizer=keras.optimizers.SGD(0.01),\n"
        "              loss='sparse_categorical_crossentropy', metrics=['accuracy'])",
        "model = build_cnn_model()",
        "model.compile(optimizer=keras.optimizers.RMSprop(0.001),\n"
        "              loss='sparse_categorical_crossentropy')",
        "inp = keras.Input((32, 32, 3))\nx = layers.Flatten()(inp)\n"
        "model = keras.Model(inp, layers.Dense(10)(x))",
        "model.compile(optimizer='adam', loss=keras.losses.CategoricalCrossentropy())",
    ])
    ex = extract(nb)
    assert "SGD(0.01)" in ex.compiles["build_fc_model"]["code"]
    assert "RMSprop(0.001)" in ex.compiles["build_cnn_model"]["code"]
    compile(ex.source, "lab", "exec")


def test_a_keras2_internal_path_beside_the_plain_import_costs_nothing(tmp_path):
    """Colab's autocomplete writes the Keras 2 module path next to the plain import."""
    from grader.imports import needed_failed_import

    nb = colab_notebook(tmp_path / "lab.ipynb", [
        "import keras\nfrom keras import layers\n"
        "from keras.layers.regularization.dropout import Dropout\n"
        "from keras.layers import Dropout",
        FC_BUILDER.replace("layers.Flatten(),", "layers.Flatten(), Dropout(0.2),"),
    ])
    sub = load_submission(nb)
    broken = next(i for i, imp in enumerate(sub.notebook.imports)
                  if imp["module"] == "keras.layers.regularization.dropout")
    imported = {"ok": True, "callables": ["build_fc_model"], "failed_imports": [
        {"index": broken, "error": "ModuleNotFoundError: No module named "
                                   "'keras.layers.regularization'"}]}
    rubric = load_rubric(None)
    assert needed_failed_import(sub, rubric.task("fc"), imported) is None
    alone = {"ok": True, "callables": ["build_fc_model"], "failed_imports": [
        {"index": broken, "error": "ModuleNotFoundError"}]}
    sub.notebook.imports[-1]["names"] = []  # as if the plain import were not there
    needed = needed_failed_import(sub, rubric.task("fc"), alone)
    assert needed and "Keras 2 path" in needed and "keras.layers" in needed


def test_self_contained_cells_with_augmentation_and_callbacks_are_skipped(tmp_path):
    """Every cell imports, loads, builds, compiles, fits, evaluates and plots; data
    augmentation, tf.data and ReduceLROnPlateau live in cells the grader does not run."""
    nb = colab_notebook(tmp_path / "lab.ipynb", [
        "import keras\nfrom keras import layers\nimport matplotlib.pyplot as plt\n"
        "(x_train, y_train), (x_test, y_test) = keras.datasets.cifar10.load_data()\n"
        + FC_BUILDER + "\nmodel = build_fc_model()\nmodel.compile('adam', "
        "'sparse_categorical_crossentropy')\nmodel.fit(x_train, y_train, epochs=1)\n"
        "model.evaluate(x_test, y_test)\nplt.plot([1, 2])\nplt.show()",
        "from keras.preprocessing.image import ImageDataGenerator\n"
        "datagen = ImageDataGenerator(horizontal_flip=True)\ndatagen.fit(x_train)",
        "import tensorflow as tf\n"
        "ds = tf.data.Dataset.from_tensor_slices((x_train, y_train)).batch(64)",
        "lr = keras.callbacks.ReduceLROnPlateau(monitor='val_loss', factor=0.5)\n"
        "model.fit(ds, epochs=2, callbacks=[lr])",
    ])
    ex = extract(nb)
    compile(ex.source, "lab", "exec")
    for gone in ("load_data", "datagen.fit", "from_tensor_slices", "model.fit", "plt.show"):
        assert gone not in ex.source, gone
    assert "def build_fc_model" in ex.source


def test_a_quick_check_warns_when_the_full_budget_would_outrun_a_time_limit():
    """A 10-22 M parameter model at batch 1024 on a CPU: the estimate says, per task and
    for the submission, that the grade would be stopped."""
    from grader.estimate import over_limits

    est = {"tasks": {"fc": 600.0, "final": 5 * 3600.0}, "full_grade_s": 5.2 * 3600,
           "upper_bound": True}
    warnings = over_limits(est, {"fc": 3600, "final": 3 * 3600}, 4 * 3600)
    assert [tid for tid, _ in warnings] == ["final", None]
    assert "over its time limit of 3.0 h" in warnings[0][1]
    assert "at most about 5.0 h" in warnings[0][1]
    assert "over the submission's time limit of 4.0 h" in warnings[1][1]
    assert over_limits(None, {}, 1) == []


def test_hints_take_the_shapes_and_the_leaderboard_task_from_the_rubric(tmp_path):
    import dataclasses

    from grader.formats import gradescope
    from grader.notebook import unresolved_message, wrap_hint
    from grader.results import load_results
    from grader.submission import builder_arguments

    rubric = dataclasses.replace(load_rubric(None), input_shape=(28, 28, 1), num_classes=5)
    args = builder_arguments(rubric)
    assert args == "input_shape=(28, 28, 1), num_classes=5"
    assert "def build_fc_model(input_shape=(28, 28, 1), num_classes=5)" in \
        wrap_hint("build_fc_model", "cell 3", args)
    path = tmp_path / "lab.py"
    path.write_text("def build_fc_model():\n    return x_train\n")
    item = {"function": "build_fc_model", "name": "x_train", "cell": 1, "line": 2}
    assert "(28, 28, 1)" in unresolved_message(item, extract(path), args)
    r = load_results(REPO / "tests" / "data" / "results_good.json")
    r.tasks = [t for t in r.tasks if t.id != "final"]  # a rubric without a 'final' task
    board = gradescope(r)["leaderboard"][0]
    assert board["name"] == f"{r.tasks[-1].question} test accuracy"
