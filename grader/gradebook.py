"""The class's points, into the LMS: the TA's own gradebook export, filled and imported back.

- Canvas: the file the gradebook's "Export" gives (``Student, ID, SIS User ID, ...``, a
  ``Points Possible`` row, one column per assignment).  Students are matched on Canvas'
  user id, which the submission download's file names carry
  (``name_[LATE_]userid_submissionid_file.py``); the assignment's column is filled and
  every other cell is written back as it was read.
- Moodle: the assignment's offline grading worksheet (``Identifier, Full name, ...,
  Grade, ..., Feedback comments``), matched on its ``Participant N`` identifier, the
  number in Moodle's download folder names (``Full Name_N_assignsubmission_file_``).

A student on the template with no submission keeps an empty grade; a submission that
matches no student is listed, never dropped silently.
"""
from __future__ import annotations

import csv
import difflib
import io
import re
from dataclasses import dataclass, field
from pathlib import Path

from . import atomic
from .classroom import Student, total
from .errors import UsageError
from .plain_text import csv_cell
from .rubric import Rubric

LMS = ("canvas", "moodle")
_CANVAS_FILE = re.compile(r"^[A-Za-z0-9-]+?_(?:LATE_)?(?P<uid>\d+)_\d+_.+$")
_MOODLE_FOLDER = re.compile(r"_(?P<pid>\d+)_assignsubmission_\w*$")


@dataclass
class Filled:
    path: Path
    filled: list[str] = field(default_factory=list)  # matched and given a grade
    not_graded: list[str] = field(default_factory=list)  # matched, nothing to enter yet
    no_submission: list[str] = field(default_factory=list)  # on the template only
    unmatched: list[str] = field(default_factory=list)  # submissions on no template row


def canvas_user_id(s: Student) -> str | None:
    m = _CANVAS_FILE.match(Path(s.file).name)
    return m.group("uid") if m else None


def moodle_participant(s: Student) -> str | None:
    for part in reversed(Path(s.file).parts[:-1]):
        m = _MOODLE_FOLDER.search(part)
        if m:
            return m.group("pid")
    return None


def _read(template: Path) -> list[list[str]]:
    try:
        text = Path(template).read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise UsageError(f"Cannot read the gradebook template {template}: {exc.strerror}",
                         hint="Export the gradebook from the LMS and give that file.") from None
    rows = list(csv.reader(io.StringIO(text)))
    if not rows:
        raise UsageError(f"The gradebook template {template} is empty.")
    return rows


def _column(header: list[str], wanted: str, what: str) -> int:
    matches = [i for i, h in enumerate(header) if wanted.lower() in h.lower()]
    if len(matches) != 1:
        close = difflib.get_close_matches(wanted, header, n=3, cutoff=0.3)
        raise UsageError(f"{what}: {len(matches)} columns match {wanted!r}. Expected one. "
                         f"Received columns: {', '.join(header)}",
                         hint=f"Did you mean {close[0]!r}?" if close else None)
    return matches[0]


def fill_canvas(students: list[Student], rubric: Rubric, template: Path, assignment: str,
                out: Path) -> Filled:
    rows = _read(template)
    header = rows[0]
    if "ID" not in header:
        raise UsageError(f"{template} has no ID column: not a Canvas gradebook export. "
                         f"Received columns: {', '.join(header)}",
                         hint="Use the file the gradebook's Export button gives.")
    id_col = header.index("ID")
    col = _column(header, assignment, "--assignment")
    by_uid = {}
    done = Filled(out)
    for s in students:
        uid = canvas_user_id(s)
        if uid is None:
            done.unmatched.append(f"{s.student} ({Path(s.file).name}: no Canvas user id in "
                                  f"the file name)")
        else:
            by_uid[uid] = s
    seen = set()
    for row in rows[1:]:
        if len(row) <= max(id_col, col) or not row[id_col].strip().isdigit():
            continue  # "Points Possible" and other rows without a student
        uid = row[id_col].strip()
        s = by_uid.get(uid)
        if s is None:
            done.no_submission.append(f"{row[0]} (ID {uid})")
            continue
        seen.add(uid)
        points = total(s, rubric)["points"]
        if points is None:
            done.not_graded.append(s.student)
            continue
        row[col] = f"{points:g}"
        done.filled.append(s.student)
    done.unmatched += [f"{s.student} (Canvas user id {uid})" for uid, s in by_uid.items()
                       if uid not in seen]
    _write(out, rows)
    return done


def fill_moodle(students: list[Student], rubric: Rubric, template: Path, out: Path) -> Filled:
    rows = _read(template)
    header = rows[0]
    ident = _column(header, "Identifier", "the Moodle worksheet")
    if "Grade" not in header:
        raise UsageError(f"{template} has no Grade column: not a Moodle grading worksheet.",
                         hint="Download the assignment's grading worksheet from Moodle.")
    grade = header.index("Grade")
    feedback = _column(header, "Feedback comments", "the Moodle worksheet")
    by_pid = {}
    done = Filled(out)
    for s in students:
        pid = moodle_participant(s)
        if pid is None:
            done.unmatched.append(f"{s.student} ({s.file}: no Moodle participant number)")
        else:
            by_pid[pid] = s
    seen = set()
    for row in rows[1:]:
        m = re.search(r"(\d+)", row[ident]) if len(row) > ident else None
        if m is None:
            continue
        s = by_pid.get(m.group(1))
        if s is None:
            done.no_submission.append(f"{row[1] if len(row) > 1 else ''} ({row[ident]})")
            continue
        seen.add(m.group(1))
        t = total(s, rubric)
        if t["points"] is None:
            done.not_graded.append(s.student)
            continue
        row[grade] = f"{t['points']:g}"
        row[feedback] = csv_cell(_feedback(s, rubric, t))
        done.filled.append(s.student)
    done.unmatched += [f"{s.student} (participant {pid})" for pid, s in by_pid.items()
                       if pid not in seen]
    _write(out, rows)
    return done


def _feedback(s: Student, rubric: Rubric, t: dict) -> str:
    parts = [f"Trained and checked by the grader: {t['machine']:g} points"]
    if t["held_accepted"]:
        parts.append(f"held tasks accepted by a TA: {t['held_accepted']:g}")
    for q in rubric.written:
        d = s.current("written", q.id)
        if d is not None:
            note = d.payload.get("comment") or ""
            parts.append(f"{q.id}: {d.payload['points']:g}/{q.points:g}" +
                         (f" ({note})" if note else ""))
    if t["pending"]:
        parts.append("still to grade: " + ", ".join(t["pending"]))
    return "; ".join(parts) + "."


def _write(out: Path, rows: list[list[str]]) -> None:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    atomic.write_text(out, buf.getvalue())


def fill(lms: str, students: list[Student], rubric: Rubric, template: Path, out: Path,
         assignment: str | None = None) -> Filled:
    if lms == "canvas":
        if not assignment:
            raise UsageError("--lms canvas needs --assignment: the column to fill.",
                             hint="Give (part of) the assignment's column header, e.g. "
                                  "--assignment 'Lab 3'.")
        return fill_canvas(students, rubric, template, assignment, out)
    if lms == "moodle":
        return fill_moodle(students, rubric, template, out)
    raise UsageError(f"--lms must be one of {', '.join(LMS)}. Received: {lms!r}")
