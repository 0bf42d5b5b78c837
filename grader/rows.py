"""One submission of a class, graded into its own folder: what is graded (``Entry``), how
it ended (``Row``), and the grading itself (``grade_one``), which never raises for the
submission.  Shared by the local batch (``batch.py``) and the cluster (``cluster.py``),
which import it; neither imports the other's module for it.
"""
from __future__ import annotations

import hashlib
import platform
import re
import time
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from .confine import Confinement
from .data import Dataset
from .errors import BackendError, GraderError
from .grading import RESULTS_FILE, check
from .options import GradeOptions
from .results import HELD, ErrorKind, Results
from .rubric import Rubric
from .session import TrainerPool


@dataclass(frozen=True)
class Entry:
    student: str
    path: Path
    # The folder the submission must stay inside: a link out of it is refused.
    folder: Path | None = None
    refused: str | None = None  # why it is not graded, found while discovering it


@dataclass
class Row:
    student: str
    path: str
    status: str  # "graded", "unreadable" or "crashed"
    points: float | None = 0.0  # None in a quick run: a pre-check gives no points
    max_points: float | None = 0.0
    passed: bool = False
    problem: str | None = None  # why a TA should look: not the models' fault
    tasks: dict = field(default_factory=dict)  # id -> (status, test accuracy)
    cached: bool = False
    seconds: float = 0.0
    mode: str = "full"
    folder: str = ""  # the student's output folder, relative to the batch's --out
    node: str = ""  # the machine (and Ray node) that graded it
    device: str = ""  # what trained the models: "gpu: NVIDIA H100", "cpu: ..."

    @property
    def graded(self) -> bool:
        return self.mode == "full"

    @property
    def verdict(self) -> str:
        """passed / failed for a grade; checked / failed for a quick run; else why not graded."""
        if self.status != "graded":
            return self.status
        if self.passed:
            return "passed" if self.graded else "checked"
        return "failed"


def student_folder(student: str) -> str:
    """A unique, stable folder name for a student id: a readable ASCII slug and a short hash
    of the exact id, so that ``a b`` and ``a_b``, or two all-Chinese names, never share one."""
    ascii_name = unicodedata.normalize("NFKD", student).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", ascii_name).strip("._-")[:40] or "student"
    return f"{slug}-{hashlib.sha256(student.encode('utf-8')).hexdigest()[:8]}"


# The errors a TA should look at (not the models' fault), as grades.csv names them.
_LOOK_AT = {ErrorKind.IMPORT: "could not be imported", ErrorKind.TIMEOUT: "timed out",
            ErrorKind.CRASH: "crashed", ErrorKind.MEMORY: "out of memory",
            ErrorKind.DISK: "filled its disk space",
            ErrorKind.GRADER: "grader bug"}


def look_at(r: Results) -> str | None:
    """A reason other than the models themselves: the TA should look at these."""
    if any(t.status == HELD for t in r.tasks):
        return "held for review"
    for t in r.tasks:
        if t.error_kind in _LOOK_AT:
            return _LOOK_AT[t.error_kind]
    return None


def graded_row(e: Entry, r: Results, cached: bool, seconds: float) -> Row:
    node = r.environment.get("node") or {}
    device = r.environment.get("device") or {}
    return Row(e.student, str(e.path), "graded", r.points, r.max_points, r.passed, look_at(r),
               {t.id: (t.status, t.test_accuracy) for t in r.tasks}, cached, seconds, r.mode,
               student_folder(e.student),
               node.get("hostname", "") + (f" (ray {node['node_id'][:8]})"
                                           if node.get("node_id") else ""),
               f"{device['kind']}: {device.get('name', '')}" if device.get("kind") else "")


def grade_one(e: Entry, out: Path, options: GradeOptions, *, rubric: Rubric,
              dataset: Dataset, data_cache: Path | None = None, formats=(),
              reference: Path | None = None, node: dict | None = None,
              retried: bool = False, trainers: TrainerPool | None = None,
              confinement: Confinement | None = None) -> Row:
    """One student's submission graded into ``out``/<folder>: its results, report and
    formats, and its row.  Never raises for the submission: a file the grader cannot
    read, or a bug in the grader, is a row that says so.  ``node`` names the machine
    (a Ray executor adds its node id); it is recorded in results.json.  ``trainers`` and
    ``confinement`` are passed to ``check``: a pool of trainers kept between
    submissions, and the sandbox detected once for all of them."""
    from .formats import write_formats
    from .html_report import REPORT_FILE, write_report
    from .results import save_results

    folder = out / student_folder(e.student)
    t0 = time.monotonic()
    try:
        # One child per submission: a batch runs submissions side by side instead.
        r = check(e.path, options, dataset=dataset, rubric=rubric, out=folder, resume=True,
                  data_cache=data_cache, reference=reference, lanes=1, trainers=trainers,
                  confinement=confinement)
        r.environment["node"] = node or {"hostname": platform.node()}
        save_results(r, folder / RESULTS_FILE)
        write_report(r, folder / REPORT_FILE)
        write_formats(r, folder, [f for f in formats if f != "github"], e.student,
                      echo=lambda *_: None)
        return graded_row(e, r, cached=False, seconds=time.monotonic() - t0)
    except BackendError as exc:  # the machine, not the student: said so, tried once more
        if not retried:
            return grade_one(e, out, options, rubric=rubric, dataset=dataset,
                             data_cache=data_cache, formats=formats, reference=reference,
                             node=node, retried=True, trainers=trainers,
                             confinement=confinement)
        return failed_row(e, "crashed", f"the grading environment failed, not the "
                          f"submission: {exc.message}", rubric, options, time.monotonic() - t0)
    except GraderError as exc:
        return failed_row(e, "unreadable", exc.message, rubric, options,
                           time.monotonic() - t0)
    except Exception as exc:  # a grader bug must cost one row, not the batch
        return failed_row(e, "crashed", f"internal error: {type(exc).__name__}: {exc}",
                           rubric, options, time.monotonic() - t0)


def failed_row(e: Entry, status: str, problem: str, rubric: Rubric, options: GradeOptions,
                seconds: float) -> Row:
    no_points = {"points": None, "max_points": None} if options.quick else \
        {"max_points": rubric.max_points}
    return Row(e.student, str(e.path), status, problem=problem, seconds=seconds,
               mode=options.mode, folder=student_folder(e.student), **no_points)
