"""``grader release OUT``: the desk's decisions into each student's results and report.

Until a TA releases them, decisions live only in the desk's database; released, each
student's ``results.json`` carries them (``review``) and ``report.html`` shows the written
feedback and points and what became of a held task, with who decided and when.  A stale
decision (made on an earlier version of the submission) is not released.
"""
from __future__ import annotations

import datetime as _dt
from pathlib import Path

from .classroom import load_class
from .html_report import REPORT_FILE, write_report
from .results import save_results
from .rubric import Rubric


def release(out: str | Path, rubric: Rubric) -> list[str]:
    """Write the decisions in force into every graded student's results and report; the
    students released."""
    out = Path(out)
    now = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    done = []
    for s in load_class(out):
        if s.results is None:
            continue
        review = {"released_at": now, "written": {}, "held": {}}
        for q in rubric.written:
            d = s.current("written", q.id)
            if d is not None:
                review["written"][q.id] = {**d.payload, "title": q.title,
                                           "max_points": q.points, "ta": d.ta, "at": d.at}
        for t in s.held():
            d = s.current("held", t.id)
            if d is not None:
                review["held"][t.id] = {**d.payload, "ta": d.ta, "at": d.at}
        s.results.review = review
        folder = out / s.folder
        save_results(s.results, folder / "results.json")
        write_report(s.results, folder / REPORT_FILE)
        done.append(s.student)
    return done
