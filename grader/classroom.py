"""A graded class as the TA's desk sees it: each student's results, written answers, held
tasks and the numbers the grader measured, with the decisions in force, and each
student's total (the machine's points, held tasks accepted, written questions graded).

Read from what ``grader grade`` wrote (``OUT/grades.csv`` and each student's
``results.json``) and from the desk's decisions (``decisions.py``); nothing is graded here.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

from .decisions import Decision, DecisionStore
from .errors import UsageError
from .plain_text import from_csv_cell
from .results import HELD, Results, load_results
from .rubric import Rubric

GRADES_FILE = "grades.csv"


@dataclass
class Student:
    student: str
    folder: str
    file: str
    results: Results | None  # None: not graded (unreadable, crashed)
    decisions: dict[tuple[str, str], Decision] = field(default_factory=dict)

    @property
    def sha256(self) -> str:
        return (self.results.submission.get("sha256", "") if self.results else "")

    def decision(self, kind: str, item: str) -> Decision | None:
        return self.decisions.get((kind, item))

    def stale(self, d: Decision | None) -> bool:
        """Made on another version of the submission: to be decided again."""
        return d is not None and d.submission_sha256 != self.sha256

    def current(self, kind: str, item: str) -> Decision | None:
        d = self.decision(kind, item)
        return None if d is None or self.stale(d) else d

    def held(self) -> list:
        """Tasks and comparisons held for review (Q5 is held with a held task)."""
        if self.results is None:
            return []
        return [x for x in [*self.results.tasks, *self.results.comparisons]
                if x.status == HELD]

    def answer(self, qid: str) -> dict | None:
        if self.results is None:
            return None
        return next((a for a in self.results.written if a.get("id") == qid), None)


def load_class(out: str | Path) -> list[Student]:
    """Every student of the class graded into ``out``, in grades.csv's order."""
    out = Path(out)
    grades = out / GRADES_FILE
    if not grades.is_file():
        raise UsageError(f"No {GRADES_FILE} in {out}.",
                         hint="Point at the --out folder of a `grader grade` run.")
    with open(grades, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    latest = DecisionStore(out).latest()
    students = []
    for row in rows:
        name = from_csv_cell(row.get("student", ""))
        folder = from_csv_cell(row.get("folder", ""))
        path = out / folder / "results.json"
        results = load_results(path) if folder and path.is_file() else None
        mine = {(k, i): d for (s, k, i), d in latest.items() if s == name}
        students.append(Student(name, folder, from_csv_cell(row.get("file", "")), results, mine))
    return students


def evidence(results: Results | None, task_ids) -> list[dict]:
    """The numbers the grader measured for these tasks, as the desk shows them beside an
    answer: accuracies (training, best validation, test), parameters, epochs, batch size,
    the curves and the layers."""
    out = []
    for tid in task_ids:
        t = results.task(tid) if results else None
        if t is None:
            out.append({"id": tid, "missing": True})
            continue
        hist = t.history or {}
        train, val = hist.get("accuracy") or [], hist.get("val_accuracy") or []
        out.append({
            "id": t.id, "question": t.question, "title": t.title, "status": str(t.status),
            "params": t.params_total, "epochs": t.epochs_run, "batch_size": t.batch_size,
            "train_accuracy": train[-1] if train else None,
            "val_accuracy": max((v for v in val if v is not None), default=None),
            "test_accuracy": t.test_accuracy,
            "curves": {"accuracy": train, "val_accuracy": val},
            "layers": [layer.get("class_name") for layer in
                       ((t.description or {}).get("layers") or [])]})
    return out


def total(s: Student, rubric: Rubric) -> dict:
    """A student's points: the machine's (a full grade's only), held tasks a TA accepted,
    and written questions graded; what is still to decide."""
    machine = s.results.points if s.results is not None and s.results.graded else None
    held = 0.0
    pending = []
    for t in s.held():
        d = s.current("held", t.id)
        if d is None:
            pending.append(f"held {t.id}")
        elif d.payload["decision"] == "accepted":
            held += d.payload["points"]
    written = 0.0
    for q in rubric.written:
        d = s.current("written", q.id)
        if d is None:
            pending.append(f"written {q.id}")
        else:
            written += d.payload["points"]
    points = None if machine is None else machine + held + written
    return {"machine": machine, "held_accepted": held, "written": written, "points": points,
            "max_points": rubric.max_points + rubric.written_points, "pending": pending}
