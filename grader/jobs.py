"""What makes two runs the same grading job, and what an earlier run of it leaves standing:
``job_identity`` (recorded in results.json as ``job``), the tasks ``--resume`` and a class
batch keep, and whether a run on disk is finished.
"""
from __future__ import annotations

from pathlib import Path

from . import __version__
from .errors import ResultsError
from .options import GradeOptions
from .results import ErrorKind, Results, TaskResult, load_results
from .rubric import Rubric, Task


def job_identity(options: GradeOptions, rubric: Rubric, submission_sha: str,
                 fingerprint: str) -> dict:
    """What makes two runs the same grading job (``GradeOptions.identity`` and what is
    graded): recorded in results.json as ``job`` and compared by ``--resume`` and by a
    class batch, which keep what an earlier run of the same job finished."""
    return {"submission_sha256": submission_sha, "rubric_sha256": rubric.sha256,
            "data_fingerprint": fingerprint, "grader_version": __version__,
            **options.identity(rubric)}


# Ends of a task that say nothing about the submission for sure (a grader bug, a crash, a
# time limit: often the machine): a later run of the same job grades them once more.
TRANSIENT = (ErrorKind.GRADER, ErrorKind.CRASH, ErrorKind.TIMEOUT)


def kept_tasks(earlier: Results | None) -> dict[str, TaskResult]:
    """The tasks of an earlier run of the same job that still stand: all but those that
    ended transiently and were not already graded again once."""
    if earlier is None:
        return {}
    retried = set(earlier.environment.get("retried_tasks") or [])
    return {t.id: t for t in earlier.tasks
            if t.error_kind not in TRANSIENT or t.id in retried}


def earlier_run(path: Path | None, job: dict) -> Results | None:
    """The results in ``path`` when they are of the same job, else None (missing,
    unreadable, written by an older grader, or another job)."""
    if path is None or not Path(path).is_file():
        return None
    try:
        old = load_results(path)
    except ResultsError:
        return None
    return old if old.job == job else None


def finished_run(path: Path | None, selected: list[Task]) -> bool:
    """Whether ``path`` holds a finished run of exactly these tasks (of any job)."""
    if path is None or not path.is_file():
        return False
    try:
        old = load_results(path)
    except ResultsError:
        return False
    return bool(old.finished_at) and [t.id for t in old.tasks] == [t.id for t in selected]
