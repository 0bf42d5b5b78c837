"""Lanes: a submission's tasks graded side by side, each lane with its own trainer and a
share of the submission's builders (``Processes``); the order the lanes take the tasks
in, and what they share (``LoopShared``).
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

from .environment import usable_cores
from .options import GradeOptions
from .results import TaskResult
from .rubric import Rubric, Task
from .sandbox import SandboxLimits
from .session import Builders, Session, TrainerPool, TrainerProcess


def default_lanes(options: GradeOptions, n_tasks: int) -> int:
    """Two children side by side for a quick check with two or more tasks on two or more
    cores, else one.  A quick check's time is mostly building each model's graphs, which
    runs on one core; full-budget training uses every core already, and two trainings at
    once halve each other's speed."""
    return 2 if options.quick and n_tasks >= 2 and usable_cores() >= 2 else 1


@dataclass
class Processes:
    """A submission's children: its builders, which its lanes share (usually one), and a
    trainer per lane."""

    builders: Builders
    trainers: list[TrainerProcess]

    # Trainers taken from a pool (given back, not closed, at the end), and how many
    # times each had started before: what this submission started is the difference.
    pool: TrainerPool | None = None
    started_before: int = 0

    @classmethod
    def make(cls, n: int, sub, rubric: Rubric, tmp: Path, limits: SandboxLimits,
             bundle: Path, pool: TrainerPool | None = None) -> "Processes":
        trainers = []
        for i in range(n):
            if pool is not None:
                trainers.append(pool.take(limits, bundle, rubric.limits.import_timeout_s))
                continue
            root = tmp / f"lane-{i + 1}"
            root.mkdir(exist_ok=True)
            trainers.append(TrainerProcess(root, limits, bundle, rubric.limits.import_timeout_s))
        made: list[Session] = []
        server = pool.fork_server(limits, bundle, rubric.limits.import_timeout_s) \
            if pool is not None else None

        def builder() -> Session:
            root = tmp / f"builder-{len(made) + 1}"
            root.mkdir()
            made.append(Session(sub, rubric, root, limits, bundle, server))
            return made[-1]

        return cls(Builders(builder, n), trainers, pool, sum(t.starts for t in trainers))

    def start(self) -> None:
        """Start as many trainers as there are cores left beside the builder, then the
        builder: they import keras while the builder imports keras and the submission (a
        builder forked from a pool's server waits for that server's hello the first time).
        The other trainers start when their lane first needs them (on one core, starting
        both at once gains no time, and a submission that fails to import or build needs no
        trainer)."""
        for trainer in self.trainers[:max(usable_cores() - 1, 0)]:
            trainer.start()
        self.builders.first.start()

    @property
    def starts(self) -> int:
        return self.builders.starts + sum(t.starts for t in self.trainers) - \
            self.started_before

    def close(self, finished: bool = True) -> None:
        """Close every child; a pool's trainers go back to it when the run ``finished``."""
        self.builders.close()
        for trainer in self.trainers:
            if self.pool is not None and finished:
                self.pool.give_back(trainer)
            else:
                trainer.close()


@dataclass
class LoopShared:
    """What the lanes grading one submission share: one lock around the results, the
    progress display and the results file, and the models described so far (a task
    compared with another's structure reads its description)."""

    lock: threading.RLock = field(default_factory=threading.RLock)
    descriptions: dict = field(default_factory=dict)
    # Tasks whose description is the builder's own account (custom code), not the trainer's.
    claimed: set = field(default_factory=set)
    noted: bool = False
    # Set when the run is interrupted: the other lanes record and save nothing more (their
    # children are being killed, and a task cut short must not be kept by --resume).
    stopped: bool = False


def run_lanes(loops: list, selected: list[Task], done: dict[str, TaskResult]) -> None:
    """Grade ``selected`` with one loop (a ``task_loop.TaskLoop``) per lane, each taking the next task when it is
    free; the results keep the rubric's order (``TaskLoop.run_one``).  One lane takes the
    tasks in the rubric's order; several take them last first.  The lab's later questions
    extend the earlier models (the student's own design comes last), so that is roughly
    the longest first, which keeps one lane from working alone at the end while the other
    idles (on the reference: 15.6 s median against 16.7 s in the rubric's order, 3
    interleaved rounds, within this VM's noise), except that a task whose structure is
    compared with another's (``same_as``) comes after that one (``lane_order``).  An error
    that stops the grader in one lane (``GraderError``) is raised here once every lane has
    stopped."""
    queue = list(selected) if len(loops) == 1 else lane_order(selected)
    shared = loops[0].shared
    raised: list[BaseException] = []

    def lane(loop) -> None:
        try:
            while True:
                with shared.lock:
                    if not queue or raised or shared.stopped:
                        return
                    task = queue.pop(0)
                loop.run_one(task, done)
        except Exception as exc:  # GraderError: the grader cannot run here
            with shared.lock:
                raised.append(exc)

    threads = [threading.Thread(target=lane, args=(loop,), daemon=True,
                                name=f"grader-lane-{i + 2}") for i, loop in enumerate(loops[1:])]
    for t in threads:
        t.start()
    try:
        lane(loops[0])
        for t in threads:  # Ctrl-C while this lane waits for the others stops them too
            t.join()
    except BaseException:  # Ctrl-C: stop now, not after the other lanes' current tasks
        with shared.lock:
            shared.stopped = True
        raise
    if raised:
        raise raised[0]


def lane_order(selected: list[Task]) -> list[Task]:
    """The tasks last first, each after the task its structure is compared with
    (``same_as``) when that one is graded too.  Started before it, that task is described
    by the time the other lane needs it; else that lane builds it once more just to
    describe it (a quarter of a second on the reference CNN)."""
    by_id = {t.id: t for t in selected}
    order: dict[str, Task] = {}

    def place(task: Task) -> None:
        if task.id in order:
            return
        if task.same_as in by_id and task.same_as != task.id:  # the rubric forbids cycles
            place(by_id[task.same_as])
        order[task.id] = task

    for task in reversed(selected):
        place(task)
    return list(order.values())
