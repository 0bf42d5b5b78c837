"""The TA's half: written answers as data, the desk's decisions, release, the LMS
gradebooks and similar work.  The class folders are made here from a graded results file
(no training): what `grader grade` writes, with a held task and written answers."""
from __future__ import annotations

import csv
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from click.testing import CliRunner

from grader.batch import Row, student_folder, write_grades
from grader.cli import main
from grader.decisions import DecisionStore
from grader.desk import create_app
from grader.results import HELD, load_results, save_results
from grader.rubric import load_rubric
from grader.written import extract_answers

from conftest import REPO, SUBMISSIONS

DATA = REPO / "tests" / "data"
ANSWERS = {"Q1": "50,000 training images of 32x32x3.", "Q3": "Far below MNIST.",
           "Q5": "Weight sharing.", "Q7": "Dropout lowered the training accuracy.",
           "Q9": "Small batches give noisy statistics."}


def notebook_with_answers(path: Path, answers: dict[str, str], code: str) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.cells.append(nbformat.v4.new_markdown_cell("# CIFAR-10 lab"))
    for q, text in answers.items():
        nb.cells.append(nbformat.v4.new_markdown_cell(f"## {q}\n{text}"))
        nb.cells.append(nbformat.v4.new_code_cell("x = 1"))
    nb.cells.append(nbformat.v4.new_markdown_cell("## Q2 Fully connected\nThe model:"))
    nb.cells.append(nbformat.v4.new_code_cell(code))
    nbformat.write(nb, str(path))
    return path


def _pdf(text_lines: list[str]) -> bytes:
    """A one-page PDF with these lines of text (Helvetica), written by hand."""
    stream = "BT /F1 12 Tf 72 720 Td 14 TL " + " ".join(
        "(" + line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)") + ") '"
        for line in text_lines) + " ET"
    objects = ["<< /Type /Catalog /Pages 2 0 R >>", "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
               "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font "
               "<< /F1 4 0 R >> >> /Contents 5 0 R >>",
               "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
               f"<< /Length {len(stream)} >>\nstream\n{stream}\nendstream"]
    out, offsets = "%PDF-1.4\n", []
    for i, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += f"{i} 0 obj\n{body}\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n" + "".join(
        f"{o:010d} 00000 n \n" for o in offsets)
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n"
    return out.encode("latin-1")


# ---- written answers ------------------------------------------------------------------

def test_markdown_answers_under_q_headings_are_all_extracted(tmp_path):
    rubric = load_rubric(None)
    nb = notebook_with_answers(tmp_path / "lab.ipynb", ANSWERS,
                               (SUBMISSIONS / "good.py").read_text())
    got = {a.id: a for a in extract_answers(nb, rubric)}
    assert set(got) == {"Q1", "Q3", "Q5", "Q7", "Q9"}
    for q, text in ANSWERS.items():
        assert got[q].found and got[q].text == text, (q, got[q])
    assert "Markdown cell" in got["Q7"].where


def test_answers_from_a_py_dict_a_report_and_a_pdf_and_those_missing(tmp_path):
    rubric = load_rubric(None)
    lab = tmp_path / "lab.py"
    lab.write_text('ANSWERS = {"Q1": "Ten classes."}\n' + (SUBMISSIONS / "good.py").read_text())
    (tmp_path / "report.md").write_text("# Report\n**Question 3:** Colour varies.\n"
                                        "more of Q3\n## Q4\nnot a written question\n")
    (tmp_path / "answers.pdf").write_bytes(_pdf(["Q5 The CNN shares its weights.",
                                                 "Q6 the dropout model"]))
    got = {a.id: a for a in extract_answers(lab, rubric)}
    assert got["Q1"].text == "Ten classes." and got["Q1"].where == "ANSWERS in lab.py"
    assert got["Q3"].text == "Colour varies.\nmore of Q3" and got["Q3"].where == "report.md"
    assert "shares its weights" in got["Q5"].text and got["Q5"].where == "answers.pdf"
    assert not got["Q7"].found and not got["Q9"].found and got["Q9"].text == ""


def test_a_report_that_is_a_link_out_of_the_folder_is_not_read(tmp_path):
    secret = tmp_path / "elsewhere.md"
    secret.write_text("## Q1\nthe TA's own notes\n")
    folder = tmp_path / "alice"
    folder.mkdir()
    (folder / "lab.py").write_text("x = 1\n")
    (folder / "report.md").symlink_to(secret)
    got = {a.id: a for a in extract_answers(folder / "lab.py", load_rubric(None))}
    assert not got["Q1"].found


# ---- a graded class, made from a results file -----------------------------------------

STUDENTS = {  # id: (file as the LMS download names it, submission, held task)
    "alice": ("Alice Smith_777_assignsubmission_file_/alice_1001_5551_lab.py", "good.py",
              "final"),
    "bob": ("Bob Jones_778_assignsubmission_file_/bob_1002_5552_lab.py", "good.py", None),
    "carl": ("Carl Wu_779_assignsubmission_file_/carl_1003_5553_lab.py", "simple_fc.py",
             None),
}


def make_class(tmp_path: Path) -> Path:
    out, subs = tmp_path / "out", tmp_path / "subs"
    rows = []
    for student, (file, source, held) in STUDENTS.items():
        path = subs / file
        path.parent.mkdir(parents=True)
        shutil.copy(SUBMISSIONS / source, path)
        r = load_results(DATA / "results_good.json")
        r.submission.update(path=str(path), name=path.name,
                            sha256=hashlib.sha256(path.read_bytes()).hexdigest())
        if held:
            t = r.task(held)
            t.status, t.points = HELD, 0.0
            t.reason = "Held for review, no points until a TA has looked: (test)"
        if student == "bob":  # a held cnn holds Q5 too: both are the desk's to decide
            r.task("cnn").status, r.task("cnn").points = HELD, 0.0
            r.comparisons[0].status, r.comparisons[0].points = HELD, 0.0
        r.written = [{"id": q, "title": q, "points": 1.0, "text": f"{student}: {text}",
                      "where": "report.md", "found": True} for q, text in ANSWERS.items()]
        folder = out / student_folder(student)
        folder.mkdir(parents=True)
        save_results(r, folder / "results.json")
        rows.append(Row(student, str(path), "graded", r.points, r.max_points, r.passed,
                        "held for review" if held else None,
                        {t.id: (t.status, t.test_accuracy) for t in r.tasks},
                        folder=student_folder(student)))
    write_grades(out / "grades.csv", rows, [t for t in load_rubric(None).task_ids])
    return out


def test_decisions_need_the_token_and_a_name_and_a_changed_submission_makes_them_stale(
        tmp_path):
    out = make_class(tmp_path)
    app = create_app(out, load_rubric(None), "T0KEN").test_client()
    assert app.get("/api/class").status_code == 403
    assert app.get("/api/class?token=wrong").status_code == 403
    ok = app.get("/api/class?token=T0KEN").get_json()
    alice = next(s for s in ok["students"] if s["student"] == "alice")
    assert [h["id"] for h in alice["held"]] == ["final"]
    bob = next(s for s in ok["students"] if s["student"] == "bob")
    assert [h["id"] for h in bob["held"]] == ["cnn", "cnn_vs_fc"]
    assert alice["written"]["Q7"]["evidence"][1]["id"] == "cnn_dropout"
    post = dict(headers={"X-Desk-Token": "T0KEN"})
    r = app.post("/api/decide", json={"student": "alice", "kind": "written", "item": "Q1",
                                      "payload": {"state": "graded", "points": 1,
                                                  "items": [1, 2]}}, **post)
    assert r.status_code == 400 and "give your name" in r.get_json()["error"]
    r = app.post("/api/decide", json={"student": "alice", "kind": "written", "item": "Q1",
                                      "payload": {"state": "graded", "points": 5}, "ta": "ann"},
                 **post)
    assert r.status_code == 400 and "between 0 and 1" in r.get_json()["error"]
    r = app.post("/api/decide", json={"student": "alice", "kind": "held", "item": "final",
                                      "payload": {"decision": "rejected"}, "ta": "ann"}, **post)
    assert r.status_code == 400 and "needs a reason" in r.get_json()["error"]
    r = app.post("/api/decide", json={"student": "alice", "kind": "written", "item": "Q1",
                                      "payload": {"state": "graded", "points": 1,
                                                  "items": [1, 2], "comment": "ok"},
                                      "ta": "ann"}, **post)
    assert r.status_code == 200 and r.get_json()["ta"] == "ann"
    # the submission changes: the decision stays in the database but is shown again
    results_path = out / student_folder("alice") / "results.json"
    res = load_results(results_path)
    res.submission["sha256"] = "0" * 64
    save_results(res, results_path)
    alice = next(s for s in app.get("/api/class?token=T0KEN").get_json()["students"]
                 if s["student"] == "alice")
    assert alice["written"]["Q1"]["stale"] and alice["written"]["Q1"]["decision"]


# ---- the LMS --------------------------------------------------------------------------

CANVAS = ('Student,ID,SIS User ID,SIS Login ID,Section,Lab 3 (5678),Quiz 1 (9999)\n'
          '    Points Possible,,,,,15.00,10.00\n'
          '"Smith, Alice",1001,as1,asmith,S1,,7.00\n'
          '"Jones, Bob",1002,bj1,bjones,S1,,8.00\n'
          '"Lee, Dana",1004,dl1,dlee,S1,,9.00\n')
MOODLE = ('Identifier,Full name,Email address,Status,Grade,Maximum Grade,Grade can be changed,'
          'Last modified (submission),Last modified (grade),Feedback comments\n'
          'Participant 777,Alice Smith,a@x.org,Submitted,,15.00,Yes,-,-,\n'
          'Participant 778,Bob Jones,b@x.org,Submitted,,15.00,Yes,-,-,\n'
          'Participant 780,Dana Lee,d@x.org,No submission,,15.00,Yes,-,-,\n')


def _rows(path: Path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.reader(f))


def _decide(out: Path):
    store = DecisionStore(out)
    for student in ("alice", "bob"):
        res = load_results(out / student_folder(student) / "results.json")
        sha = res.submission["sha256"]
        store.record(student, "written", "Q1", sha, {"state": "graded", "points": 1,
                                                     "items": [1, 2], "comment": "=good"},
                     "ann", 1.0)
        store.record(student, "written", "Q3", sha, {"state": "not_answered"}, "ben", 1.0)
    res = load_results(out / student_folder("alice") / "results.json")
    store.record("alice", "held", "final", res.submission["sha256"],
                 {"decision": "accepted", "reason": "checked the code"}, "ann", 3.0)


def _filled(tmp_path: Path, lms: str, text: str, *more: str):
    """A decided class's gradebook filled from a template of ``text``: the CLI's result,
    the template's rows and the filled rows."""
    out = make_class(tmp_path)
    _decide(out)
    template = tmp_path / f"{lms}.csv"
    template.write_text(text)
    r = CliRunner().invoke(main, ["gradebook", str(out), "--lms", lms, "--template",
                                  str(template), *more])
    assert r.exit_code == 0, r.output
    before, after = _rows(template), _rows(out / f"gradebook-{lms}.csv")
    assert len(before) == len(after)
    return r, before, after


def _only_changed(before, after, cols: set[int]) -> None:
    for b, a in zip(before, after):  # every other cell as it was
        assert [x for i, x in enumerate(b) if i not in cols] == \
            [x for i, x in enumerate(a) if i not in cols]


def test_canvas_round_trip_fills_one_column_and_lists_the_rest(tmp_path):
    r, before, after = _filled(tmp_path, "canvas", CANVAS, "--assignment", "Lab 3")
    col = before[0].index("Lab 3 (5678)")
    _only_changed(before, after, {col})
    by_id = {a[1]: a[col] for a in after[2:]}
    # alice: 7 machine points + 3 accepted (held final) + 1 written; bob: 7 (cnn and Q5
    # held, not decided) + 1
    assert by_id == {"1001": "11", "1002": "8", "1004": ""}
    text = " ".join(r.output.split())
    assert "1 on the template with no submission" in text and "Lee, Dana" in text
    assert "1 submissions that match no student on the template" in text and "carl" in text


def test_moodle_round_trip_fills_grade_and_feedback(tmp_path):
    _, before, after = _filled(tmp_path, "moodle", MOODLE)
    g, fb = before[0].index("Grade"), before[0].index("Feedback comments")
    _only_changed(before, after, {g, fb})
    rows = {a[0]: a for a in after[1:]}
    assert rows["Participant 777"][g] == "11" and rows["Participant 778"][g] == "8"
    assert rows["Participant 780"][g] == ""
    assert "Q1: 1/1 (=good)" in rows["Participant 777"][fb]
    assert "Q3: 0/1" in rows["Participant 777"][fb]
    assert not rows["Participant 777"][fb].startswith("=")
    assert "still to grade" in rows["Participant 777"][fb]  # Q5, Q7, Q9


def test_a_gradebook_template_of_another_kind_is_a_usage_error(tmp_path):
    out = make_class(tmp_path)
    template = tmp_path / "x.csv"
    template.write_text("a,b\n1,2\n")
    r = CliRunner().invoke(main, ["gradebook", str(out), "--lms", "canvas", "--template",
                                  str(template), "--assignment", "Lab"])
    assert r.exit_code == 2 and "not a Canvas gradebook export" in r.output
    assert "Traceback" not in r.output


def test_release_puts_the_decisions_in_results_and_reports(tmp_path):
    out = make_class(tmp_path)
    _decide(out)
    r = CliRunner().invoke(main, ["release", str(out)])
    assert r.exit_code == 0, r.output
    res = load_results(out / student_folder("alice") / "results.json")
    assert res.review["held"]["final"]["decision"] == "accepted"
    assert res.review["written"]["Q1"]["points"] == 1.0
    report = (out / student_folder("alice") / "report.html").read_text()
    assert "What your TAs decided" in report and "checked the code" in report
    assert "=good" in report and "ann" in report


# ---- similar work ---------------------------------------------------------------------

def test_two_copies_of_one_submission_are_a_similar_pair(tmp_path):
    out = make_class(tmp_path)  # alice and bob handed in good.py; carl simple_fc.py
    r = CliRunner().invoke(main, ["similarity", str(out)])
    assert r.exit_code == 0, r.output
    with open(out / "similarity.csv", newline="") as f:
        pairs = list(csv.DictReader(f))
    top = pairs[0]
    assert {top["student_a"], top["student_b"]} == {"alice", "bob"}
    assert float(top["code_similarity"]) == 1.0 and top["same_own_design"] == "yes"
    assert "def build_" in top["matched_a"]
    assert not any("carl" in (p["student_a"], p["student_b"]) and
                   float(p["code_similarity"]) >= 0.6 for p in pairs)


# ---- the desk in a real browser -------------------------------------------------------

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _start_desk(out: Path) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, "-m", "grader.cli", "review", str(out),
                             "--no-browser"], stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    for line in proc.stderr:
        if "http://127.0.0.1:" in line:
            return proc, line.split(": ", 1)[1].strip()
    raise AssertionError("the desk did not print its address")


@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (.ci/run installs it)")
def test_two_tas_grade_in_a_browser_and_nothing_is_lost_when_the_server_dies(tmp_path):
    from playwright.sync_api import expect, sync_playwright

    out = make_class(tmp_path)
    proc, url = _start_desk(out)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=[
                "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--no-first-run"])
            ann, ben = browser.new_context(), browser.new_context()  # two TAs, two sessions
            page = ann.new_page()
            page.goto(url)
            page.fill("#ta", "ann")
            page.click("nav a[data-q='Q1']")
            page.wait_for_selector("#answer")
            assert page.text_content("#who") == "alice"
            assert "alice: 50,000 training images" in page.text_content("#answer")
            page.click("body")
            page.keyboard.press("1")  # tick item 1 of Q1
            page.wait_for_selector("text=saved")
            page.keyboard.press("2")
            expect(page.locator("#current")).to_have_text(re.compile(r"^1\.?0? pt by ann"))
            page.keyboard.press("j")  # the next student: bob
            expect(page.locator("#who")).to_have_text("bob")
            other = ben.new_page()
            other.goto(url)
            other.fill("#ta", "ben")
            other.click("nav a[data-q='Q7']")
            other.wait_for_selector("table.evidence tr[data-task='cnn_dropout']")
            other.click("#not-answered")
            expect(other.locator("#current")).to_have_text(re.compile("^not answered by ben"))
            page.click("text=Held tasks")
            page.fill("input[data-reason='alice/final']", "read the code: honest")
            page.click("section[data-student='alice'] button.accept")
            page.wait_for_selector("section[data-student='alice'] .decided")
            page.close()  # a closed tab, then a killed server
            other.close()
            browser.close()
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    proc, url = _start_desk(out)
    try:
        import urllib.request
        with urllib.request.urlopen(url.replace("/?token=", "/api/class?token=")) as resp:
            state = json.loads(resp.read())
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    alice = next(s for s in state["students"] if s["student"] == "alice")
    q1 = alice["written"]["Q1"]["decision"]
    assert q1["ta"] == "ann" and q1["payload"]["items"] == [1, 2] and q1["payload"]["points"] == 1
    q7 = alice["written"]["Q7"]["decision"]
    assert q7["ta"] == "ben" and q7["payload"]["state"] == "not_answered"
    assert alice["held"][0]["decision"]["payload"]["decision"] == "accepted"
    assert alice["total"]["points"] == 7 + 3 + 1
    template = tmp_path / "canvas.csv"
    template.write_text(CANVAS)
    r = CliRunner().invoke(main, ["gradebook", str(out), "--lms", "canvas", "--template",
                                  str(template), "--assignment", "Lab 3"])
    assert r.exit_code == 0, r.output
    after = {row[1]: row for row in _rows(out / "gradebook-canvas.csv")}
    assert after["1001"][5] == "11"
