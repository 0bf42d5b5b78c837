"""The grader's exceptions.

Every error a user can cause (a bad path, a malformed rubric, no data) is a
``GraderError``; the CLI catches it in one place, prints ``message`` and
``hint`` on one line each and exits with ``exit_code``.  A student's broken
submission is not an error of the grader: it becomes a failed task in the
results, never an exception here.
"""
from __future__ import annotations


class GraderError(Exception):
    """Base class: a problem the user can fix.  Exit code 2."""

    exit_code = 2

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class UsageError(GraderError):
    """A bad command-line value: a task id that does not exist, a bad seed."""


class RubricError(GraderError):
    """The rubric file is missing, malformed or inconsistent."""


class DataError(GraderError):
    """The dataset cannot be found or read, or it is not what the rubric expects."""


class BackendError(GraderError):
    """The grading environment failed: keras or its backend would not start in a child.
    The grader's problem, never the student's; a class batch tries it once more."""


class SubmissionError(GraderError):
    """The submission file cannot be read at all (missing, not Python, not UTF-8).

    A file that exists but is broken Python is graded (every task fails with the
    syntax error); only a file the grader cannot even open is a usage error.
    """


class ResultsError(GraderError):
    """A results file is missing, corrupt, or from an unknown schema version."""
