"""Live progress: how a grading run tells its caller what it is doing, as it goes.

``check`` calls a ``GradeProgress``; the library default says nothing, the CLI passes a
``console.RichProgress``.  Messages from the child (``batch`` and ``epoch`` events)
arrive through ``event``.  A class batch calls a ``BatchProgress``.  (The HTML page
written at the end is ``html_report``.)
"""
from __future__ import annotations


class GradeProgress:
    def start(self, results, tasks) -> None:
        pass

    def task_started(self, task, epochs: int) -> None:
        pass

    def event(self, msg: dict) -> None:
        pass

    def task_finished(self, result) -> None:
        pass

    def finish(self, results) -> None:
        pass


class BatchProgress:
    """What a batch tells its caller: a submission started, finished, or was skipped."""

    def start(self, total: int, cached: int) -> None:
        pass

    def started(self, entry) -> None:
        pass

    def finished(self, entry, row) -> None:
        pass

    def finish(self, rows) -> None:
        pass
