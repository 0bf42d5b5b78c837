"""How a grading run tells its caller what it is doing.

``check`` calls a ``Reporter``; the library default says nothing, the CLI
passes a ``console.RichReporter``.  Messages from the child (``batch`` and
``epoch`` events) arrive through ``event``.
"""
from __future__ import annotations


class Reporter:
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


NullReporter = Reporter
