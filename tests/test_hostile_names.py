"""Nothing a student names or sends is read as markup, a formula, a terminal escape or
broken XML; nothing outside the student's folder reaches the sandbox."""
from __future__ import annotations

import csv
import io
import xml.etree.ElementTree as ET
from pathlib import Path

from click.testing import CliRunner
from rich.console import Console

from grader.batch import Row, grade_batch, write_grades
from grader.cli import main
from grader.formats import github, junit
from grader.plain_text import csv_cell, for_terminal, xml_text
from grader.results import ERROR, load_results
from grader.submission import load_submission

from conftest import SUBMISSIONS

FORMULAS = ['=HYPERLINK("http://x","y")', "+1+1", "-1+1", "@SUM(1+1)", "\t=1", "\r=1"]


def test_no_cell_of_grades_csv_is_a_formula(tmp_path):
    rows = [Row(name, f"/subs/{name}.py", "unreadable", problem=name) for name in FORMULAS]
    write_grades(tmp_path / "grades.csv", rows, ["fc"])
    with open(tmp_path / "grades.csv", newline="") as f:
        read = list(csv.reader(f))
    for row in read[1:]:
        for cell in row:
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), row
    assert [r[0] for r in read[1:]] == ["'" + f for f in FORMULAS]  # the id is still there
    assert csv_cell("0.5") == "0.5" and csv_cell(None) == ""


def test_terminal_text_is_never_markup_or_an_escape():
    hostile = "[/red] [bold]x[/bold]\x1b]0;title\x07\n  passed\x9b2J\u202e"
    shown = for_terminal(hostile)
    assert "\x1b" not in shown and "\x07" not in shown and "\n" not in shown
    assert "\x9b" not in shown and "\u202e" not in shown
    console = Console(file=io.StringIO(), force_terminal=False, width=200)
    console.print(shown)  # no MarkupError
    out = console.file.getvalue()
    assert "[/red] [bold]x[/bold]\\x1b]0;title\\x07\\n  passed" in out


def test_junit_holds_any_reason_and_github_escapes_its_properties(tmp_path):
    r = load_results(Path(__file__).parent / "data" / "results_errors.json")
    t = next(t for t in r.tasks if t.status == ERROR)
    t.reason = "bad \x01 byte \x1b[2J and \ud800 a lone surrogate"
    doc = ET.fromstring(junit([("=cmd|\x02 student", r)]).encode("utf-8"))
    case = next(c for c in doc.iter("error"))
    assert "\\x01" in case.text and "\\x1b" in case.text
    assert xml_text("ok\ttab\n") == "ok\ttab\n"
    lines = []
    r.submission["path"] = "sub,dir/a:b.py"
    r.submission["kind"] = "python"
    github(r, echo=lines.append)
    line = next(l for l in lines if l.startswith("::error"))
    props, message = line[len("::error "):].split("::", 1)
    assert "sub%2Cdir/a%3Ab.py" in props and "\n" not in line and "\r" not in line


def test_a_builders_markup_and_escapes_reach_no_output_raw(synthetic_npz, tmp_path):
    """It used to end `grader check` with exit 3 (MarkupError) and no results."""
    out = tmp_path / "out"
    r = CliRunner().invoke(main, ["check", str(SUBMISSIONS / "hostile_text.py"), "--quick",
                                  "--data", str(synthetic_npz), "--tasks", "fc,cnn",
                                  "--out", str(out), "--format", "junit",
                                  "--format", "github"])
    assert r.exit_code == 1, r.output
    text = r.output
    assert "\x1b" not in text and "\x07" not in text and "\x01" not in text
    assert "[/red]" in text  # shown as written, not applied
    results = load_results(out / "results.json")
    assert results.task("fc").status == ERROR and results.task("cnn").status != ERROR
    ET.parse(out / "junit.xml")
    assert (out / "report.html").is_file()


# ---- files a student names -------------------------------------------------------------

LABEL_THIEF = '''import keras

def build_fc_model(input_shape=(32, 32, 3), num_classes=10):
    return keras.Sequential([keras.Input(shape=input_shape), keras.layers.Flatten(),
                             keras.layers.Dense(num_classes, activation="softmax")])

def never_called():
    import cifar_cache
'''


def _class(tmp_path: Path, data: Path) -> Path:
    """A class folder in which each student links to the grader's data file another way."""
    subs = tmp_path / "subs"
    (subs / "alice").mkdir(parents=True)  # a sibling module that is a link to the data
    (subs / "alice" / "lab.py").write_text(LABEL_THIEF)
    (subs / "alice" / "cifar_cache.py").symlink_to(data)
    (subs / "bob").mkdir()  # a sibling package whose file is a link
    (subs / "bob" / "lab.py").write_text(LABEL_THIEF)
    (subs / "bob" / "cifar_cache").mkdir()
    (subs / "bob" / "cifar_cache" / "__init__.py").write_text("")
    (subs / "bob" / "cifar_cache" / "labels.npz").symlink_to(data)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "lab.py").write_text(LABEL_THIEF)
    (subs / "carol").mkdir()  # the main file is a link out of the folder
    (subs / "carol" / "lab.py").symlink_to(outside / "lab.py")
    (subs / "dave").symlink_to(outside, target_is_directory=True)  # the folder is a link
    (subs / "erin").mkdir()  # a link that stays inside the folder is fine
    (subs / "erin" / "real.py").write_text("X = 1\n")
    (subs / "erin" / "lab.py").write_text(LABEL_THIEF.replace("import cifar_cache",
                                                              "import helper"))
    (subs / "erin" / "helper.py").symlink_to(subs / "erin" / "real.py")
    return subs


def test_links_out_of_a_students_folder_are_refused_by_name(synthetic_npz, tmp_path,
                                                             shared_trainers):
    subs = _class(tmp_path, synthetic_npz)
    rows = {r.student: r for r in grade_batch([subs], tmp_path / "out", data=synthetic_npz,
                                              tasks="fc", quick=True, allow_unsandboxed=True,
                                              **shared_trainers)}
    for student, named in (("alice", "cifar_cache.py"), ("bob", "cifar_cache/labels.npz"),
                           ("carol", "lab.py"), ("dave", "dave")):
        row = rows[student]
        assert row.status == "unreadable" and not row.passed, (student, row)
        assert named in row.problem and "symbolic link" in row.problem, row.problem
    assert rows["erin"].status == "graded"
    assert load_submission(subs / "erin" / "lab.py").siblings == {"helper.py": b"X = 1\n"}


def test_a_linked_sibling_never_reaches_the_childs_folder(synthetic_npz, tmp_path):
    subs = _class(tmp_path, synthetic_npz)
    r = CliRunner().invoke(main, ["check", str(subs / "alice" / "lab.py"), "--quick",
                                  "--data", str(synthetic_npz), "--tasks", "fc"])
    assert r.exit_code == 2 and "cifar_cache.py is a symbolic link" in r.output, r.output
    assert "Traceback" not in r.output
