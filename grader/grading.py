"""Grade one submission: the library function behind ``grader check``.

    results = grader.check("lab.py", data="~/cifar10.npz", tasks=["fc"], out="out/")
    results = grader.check("lab.py", GradeOptions(quick=True), data=...)

Loads the rubric and data in this process, runs the student's code in a child
(``session.Session``), checks what comes back (``replies``, ``checks``), and returns a
``Results``.  With ``out`` the results file is rewritten after every task, so nothing
finished is lost if the run is stopped.
"""
from __future__ import annotations

import datetime as _dt
import difflib
import math
import os
import platform
import statistics
import tempfile
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np

from . import __version__, architecture, cgroups, checks
from .data import Dataset, Split, load_dataset, make_split
from .environment import unused_gpus
from .estimate import full_grade_estimate, over_limits
from .errors import GraderError, ResultsError, UsageError
from .imports import needed_failed_import, submission_notes
from .options import GradeOptions, options_from
from .progress import GradeProgress
from .replies import TestSet, apply_reply, import_failure, read_predictions
from .results import (ERROR, ErrorKind, Finding, Results, TaskResult, load_results,
                      save_results)
from .rubric import Rubric, Task, load_rubric
from .sandbox import Ended, SandboxLimits
from .session import Builders, Session, TrainerProcess, task_request
from .submission import (load_submission, missing_function_message,
                         training_settings, training_table_findings)
from .written import extract_answers

RESULTS_FILE = "results.json"
# How an Ended child turn reads in a task's reason, and what kind of error it is.
_ENDED_KIND = {"timeout": ErrorKind.TIMEOUT, "memory": ErrorKind.MEMORY,
               "disk": ErrorKind.DISK, "exited": ErrorKind.CRASH,
               "protocol": ErrorKind.PROTOCOL}


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def select_tasks(rubric: Rubric, tasks) -> list[Task]:
    if not tasks:
        return list(rubric.tasks)
    if isinstance(tasks, str):
        tasks = [t for t in tasks.split(",") if t.strip()]
    chosen = []
    for tid in (t.strip() for t in tasks):
        if tid not in rubric.task_ids:
            close = difflib.get_close_matches(tid, rubric.task_ids, n=1)
            raise UsageError(f"Unknown task {tid!r}. Expected one of: {', '.join(rubric.task_ids)}",
                             hint=f"Did you mean '{close[0]}'?" if close else None)
        chosen.append(rubric.task(tid))
    return [t for t in rubric.tasks if t in chosen]


def write_bundle(split: Split, folder: Path) -> Path:
    """The arrays a child may read: no test labels, ever."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("x_train", "y_train", "x_val", "y_val", "x_test"):
        np.save(folder / f"{name}.npy", getattr(split, name), allow_pickle=False)
    return folder


def shared_bundle(split: Split, cache: Path, fingerprint: str, quick: bool) -> Path:
    """``write_bundle`` once per dataset and mode; concurrent callers wait for the first."""
    import fcntl

    folder = Path(cache) / f"{fingerprint}-{'quick' if quick else 'full'}"
    cache.mkdir(parents=True, exist_ok=True)
    with open(Path(cache) / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (folder / "complete").exists():
            write_bundle(split, folder)
            (folder / "complete").write_text("")
    return folder


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


def _finished(path: Path | None, selected: list[Task]) -> bool:
    """Whether ``path`` holds a finished run of exactly these tasks (of any job)."""
    if path is None or not path.is_file():
        return False
    try:
        old = load_results(path)
    except ResultsError:
        return False
    return bool(old.finished_at) and [t.id for t in old.tasks] == [t.id for t in selected]


def check(submission: str | Path, options: GradeOptions | None = None, *,
          data: str | Path | None = None, dataset: Dataset | None = None,
          rubric: str | Path | Rubric | None = None, out: str | Path | None = None,
          progress: GradeProgress | None = None, resume: bool = False,
          reference: str | Path | None = None, data_cache: Path | None = None,
          lanes: int | None = None, **option_changes) -> Results:
    """Grade one submission and return its results (also written to ``out``/results.json).

    ``options`` is a ``GradeOptions``; keywords such as ``tasks=``, ``quick=`` or
    ``seeds=`` override its fields (``check(path, quick=True)``).
    ``resume`` keeps the tasks already in ``out``/results.json from a run of the same
    job (``job_identity``) and grades only the rest.
    ``reference`` is the reference results file to compare with (default:
    ``reference/results/<dataset>.json`` beside the rubric's folder).
    ``data_cache`` is a folder where the arrays handed to children are written once
    and reused by later calls (batch grading), instead of once per submission.
    ``lanes`` is how many children grade the tasks side by side (default: two for a
    quick check on a machine with two or more cores, else one; see ``default_lanes``).
    The results do not depend on it: each task builds and trains from its own seed.
    """
    options = options_from(options, option_changes)
    rubric = rubric if isinstance(rubric, Rubric) else load_rubric(rubric)
    from . import confine
    confinement = confine.detect(options.sandbox)
    if options.sandbox not in ("auto", "none") and confinement.kind != options.sandbox:
        raise UsageError(f"--sandbox {options.sandbox} was asked for, but {confinement.why}.",
                         hint="Run `grader doctor` to see what protects this machine, or "
                              "choose --sandbox auto.")
    sub = load_submission(submission)
    selected = select_tasks(rubric, options.tasks)
    n_lanes = default_lanes(options, len(selected)) if lanes is None else lanes
    if n_lanes < 1:
        raise UsageError(f"lanes must be at least 1. Received: {lanes}")
    n_lanes = max(1, min(n_lanes, len(selected)))  # a child per task at most: none idle
    # Lanes share a GPU: each child then takes GPU memory as it needs it, not all of it.
    limits = SandboxLimits(memory_mb=options.memory_mb or rubric.limits.memory_mb,
                           max_file_mb=rubric.limits.max_file_mb,
                           block_network=rubric.limits.block_network, gpu=options.gpu,
                           gpu_shared=options.gpu_shared or n_lanes > 1,
                           confinement=confinement)
    seed = rubric.seed if options.seed is None else options.seed
    progress = progress or GradeProgress()
    out_path = Path(out) / RESULTS_FILE if out is not None else None
    # A finished run of these tasks is on disk: if it is of the same job (known once the
    # data are loaded), it is returned as it is, and no child is started for it.
    maybe_done = resume and _finished(out_path, selected)
    with tempfile.TemporaryDirectory(prefix="grader-") as tmp:
        tmp = Path(tmp)
        procs: Processes | None = None
        if dataset is None and data_cache is None and not maybe_done:
            # The children import keras (seconds) while this process loads the data: their
            # bundle folder exists now and is filled before a child reads it.
            bundle = tmp / "data"
            bundle.mkdir()
            procs = Processes.make(n_lanes, sub, rubric, tmp, limits, bundle)
            procs.start()
        try:
            if dataset is None:
                dataset = load_dataset(data, rubric.input_shape, rubric.num_classes,
                                       rubric.dataset)
            quick = options.quick
            q = rubric.quick
            split = make_split(dataset, rubric.validation_fraction, rubric.split_seed,
                               *((q.train_samples, q.val_samples, q.test_samples)
                                 if quick else ()))
            results = _new_results(sub, rubric, options, dataset, split, limits, seed)
            results.written = [a.to_dict() for a in extract_answers(sub.path, rubric)]
            earlier = earlier_run(out_path, results.job) if resume else None
            done = kept_tasks(earlier)
            if earlier is not None and earlier.finished_at and \
                    set(done) == {t.id for t in selected} == {t.id for t in earlier.tasks}:
                progress.start(earlier, selected)
                for t in earlier.tasks:
                    progress.task_finished(t)
                progress.finish(earlier)
                return earlier  # its notes, environment and comparisons as they were
            if earlier is not None:
                results.environment["retried_tasks"] = sorted(
                    {t.id for t in earlier.tasks if t.id not in done} |
                    set(earlier.environment.get("retried_tasks") or []))

            def save():
                if out_path is not None:
                    save_results(results, out_path)

            progress.start(results, selected)
            if procs is None:
                bundle = shared_bundle(split, data_cache, dataset.fingerprint, quick) \
                    if data_cache is not None else write_bundle(split, tmp / "data")
                procs = Processes.make(n_lanes, sub, rubric, tmp, limits, bundle)
                procs.start()
            else:
                write_bundle(split, bundle)
            test = TestSet(split.x_test, dataset.y_test[split.test_index], len(split.x_val))
            deadline = time.monotonic() + results.environment["limits"]["submission_timeout_s"]
            shared = LoopShared()
            run_lanes([TaskLoop(procs.builders, trainer, results, options, bundle, test,
                                progress, save, deadline, shared)
                       for trainer in procs.trainers], selected, done)
        finally:
            if procs is not None:
                procs.close()
        results.environment["child_starts"] = procs.starts
        results.environment["lanes"] = len(procs.trainers)
    by_id = {t.id: t for t in results.tasks}
    for comp in rubric.comparisons:
        if comp.task in by_id and comp.baseline in by_id:
            results.comparisons.append(checks.compare(comp, by_id, quick))
    _compare_with_reference(results, rubric, reference)
    if quick:
        n_val = max(1, int(round(len(dataset.x_train) * rubric.validation_fraction)))
        results.estimate = full_grade_estimate(
            results, {"n_train": len(dataset.x_train) - n_val, "n_val": n_val,
                      "n_test": len(dataset.x_test)}, options.seeds)
        limits = {t.id: options.task_timeout_s or t.timeout_s for t in selected}
        for tid, warning in over_limits(results.estimate, limits,
                                        results.environment["limits"]["submission_timeout_s"]):
            where = by_id[tid].findings if tid else results.notes
            where.append(Finding("estimate", False, warning, severity="warning"))
    results.finished_at = _now()
    save()
    progress.finish(results)
    return results


def _new_results(sub, rubric: Rubric, options: GradeOptions, dataset: Dataset, split: Split,
                 limits: SandboxLimits, seed: int) -> Results:
    """The results of a run about to start: what is graded, how, on which data."""
    return Results(
        submission=sub.describe(),
        rubric={"id": rubric.id, "version": rubric.version, "path": rubric.path,
                "sha256": rubric.sha256},
        mode=options.mode, seed=seed, started_at=_now(),
        data={**dataset.describe(), "n_train_used": int(len(split.x_train)),
              "n_val": int(len(split.x_val)), "n_test_used": int(len(split.x_test)),
              "validation_fraction": rubric.validation_fraction, "split_seed": rubric.split_seed,
              "class_names": list(rubric.class_names)},
        environment={"python": platform.python_version(), "platform": platform.platform(),
                     "steps_per_execution": options.steps_per_execution,
                     "dtype_policy": options.dtype_policy,
                     "limits": {"memory_mb": limits.memory_mb, "max_file_mb": limits.max_file_mb,
                                "task_timeout_s": options.task_timeout_s,
                                "submission_timeout_s": options.submission_timeout_s
                                or rubric.limits.submission_timeout_s,
                                "enforced_by": cgroups.enforced()}},
        grader_version=__version__,
        job=job_identity(options, rubric, sub.sha256, dataset.fingerprint),
        options=options.to_dict())


def _compare_with_reference(results: Results, rubric: Rubric,
                            reference: str | Path | None) -> None:
    from .reference import comparison, default_path, load_reference

    ref_path = Path(reference) if reference else default_path(rubric)
    try:
        ref = load_reference(ref_path)
    except ResultsError as exc:
        ref = None
        results.notes.append(Finding("reference", False, f"{exc.message} No task is compared "
                                     f"with the reference solutions.", severity="warning"))
    if ref is None and reference and not ref_path.exists():
        results.notes.append(Finding("reference", False, f"The reference file {reference} "
                                     f"does not exist: no task is compared with the reference "
                                     f"solutions.", severity="warning"))
    for tid, comp in comparison(results, ref).items():
        results.task(tid).reference = comp


def default_lanes(options: GradeOptions, n_tasks: int) -> int:
    """Two children side by side for a quick check with two or more tasks on two or more
    cores, else one.  A quick check's time is mostly building each model's graphs, which
    runs on one core; full-budget training uses every core already, and two trainings at
    once halve each other's speed."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return 2 if options.quick and n_tasks >= 2 and cores >= 2 else 1


@dataclass
class Processes:
    """A submission's children: its builders, which its lanes share (usually one), and a
    trainer per lane."""

    builders: Builders
    trainers: list[TrainerProcess]

    @classmethod
    def make(cls, n: int, sub, rubric: Rubric, tmp: Path, limits: SandboxLimits,
             bundle: Path) -> "Processes":
        trainers = []
        for i in range(n):
            root = tmp / f"lane-{i + 1}"
            root.mkdir(exist_ok=True)
            trainers.append(TrainerProcess(root, limits, bundle, rubric.limits.import_timeout_s))
        made: list[Session] = []

        def builder() -> Session:
            root = tmp / f"builder-{len(made) + 1}"
            root.mkdir()
            made.append(Session(sub, rubric, root, limits, bundle))
            return made[-1]

        return cls(Builders(builder, n), trainers)

    def start(self) -> None:
        """Start every child at once: the trainers import keras while the builder imports
        keras and the submission."""
        self.builders.first.start()
        for trainer in self.trainers:
            trainer.start()

    @property
    def starts(self) -> int:
        return self.builders.starts + sum(t.starts for t in self.trainers)

    def close(self) -> None:
        self.builders.close()
        for trainer in self.trainers:
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


def run_lanes(loops: list["TaskLoop"], selected: list[Task],
              done: dict[str, TaskResult]) -> None:
    """Grade ``selected`` with one loop per lane, each taking the next task when it is
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

    def lane(loop: "TaskLoop") -> None:
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

    threads = [threading.Thread(target=lane, args=(loop,), daemon=True) for loop in loops[1:]]
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


class TaskLoop:
    """Grades tasks of one submission in one session (one lane); holds what they share:
    the results so far, the data bundle, the test labels (which never leave this process),
    the progress display and the submission's deadline.  Several loops (lanes) may share
    one ``LoopShared`` and grade side by side (``run_lanes``)."""

    def __init__(self, builders: Builders, trainer: TrainerProcess, results: Results,
                 options: GradeOptions, bundle: Path, test: TestSet, progress: GradeProgress,
                 save, deadline: float, shared: LoopShared | None = None):
        self.builders = builders
        self.trainer = trainer
        self.rubric = builders.first.rubric
        self.sub = builders.first.submission
        self.results = results
        self.options = options
        self.bundle = bundle
        self.test = test
        self.progress = progress
        self.save = save
        self.deadline = deadline
        self.seed = results.seed
        self.shared = shared or LoopShared()
        self.descriptions = self.shared.descriptions

    def run_one(self, task: Task, done: dict[str, TaskResult]) -> None:
        lock = self.shared.lock
        if task.id in done:
            with lock:
                self.results.tasks.append(done[task.id])
                if done[task.id].description:
                    self.descriptions[task.id] = done[task.id].description
                self.progress.task_finished(done[task.id])
            return
        result = TaskResult(task.id, task.question, task.title, task.function,
                            status=ERROR, reason="", max_points=task.points,
                            threshold=task.threshold, max_epochs=task.max_epochs,
                            compare_with=task.compare_with)
        try:
            self.grade(task, result)
        except GraderError:
            raise  # the grader cannot run here at all: the caller says why
        except Exception as exc:  # a grader bug costs this task, not the submission
            result.status, result.error_kind, result.points = ERROR, ErrorKind.GRADER, 0.0
            result.reason = (f"The grader failed while grading {task.function} (a bug in "
                             f"the grader, not a verdict on your code): "
                             f"{type(exc).__name__}: {exc}")
            result.error = {"type": type(exc).__name__, "message": str(exc),
                            "traceback": traceback.format_exc()}
            self.trainer.close()
        with lock:
            if self.shared.stopped:
                return
            # Listed once decided: a results file saved meanwhile (by another lane) holds
            # only finished tasks, which --resume keeps; in the rubric's order, whichever
            # lane finished first.
            self.results.tasks.append(result)
            order = {tid: i for i, tid in enumerate(self.rubric.task_ids)}
            self.results.tasks.sort(key=lambda t: order.get(t.id, len(order)))
            self.progress.task_finished(result)
            self.save()

    @property
    def submission_timeout_s(self) -> float:
        return self.results.environment["limits"]["submission_timeout_s"]

    def _fail(self, result: TaskResult, kind: ErrorKind, reason: str) -> None:
        result.status, result.error_kind, result.reason = ERROR, kind, reason

    def grade(self, task: Task, result: TaskResult) -> None:
        """One task: import (once), check the budget, build, describe, check the structure,
        train under the budget, predict, and decide."""
        rubric, quick = self.rubric, self.options.quick
        if time.monotonic() > self.deadline:
            return self._fail(result, ErrorKind.TIMEOUT,
                              f"Not graded: the submission's time limit of "
                              f"{self.submission_timeout_s:.0f} s was used up.")
        with self.builders.hold() as builder:
            imported = builder.ensure()
            self._record_environment()
            if isinstance(imported, Ended) or not imported.get("ok"):
                reason, result.error = import_failure(imported, self.sub,
                                                      rubric.limits.import_timeout_s)
                self._fail(result, ErrorKind.IMPORT, reason)
                result.output_tail = builder.import_output
                builder.close()
                return
        with self.shared.lock:
            if not self.shared.noted:  # once per run: notes on the submission as a whole
                self.shared.noted = True
                self.results.notes += training_table_findings(imported.get("training"),
                                                              rubric) + \
                    submission_notes(self.sub, rubric, imported)
        if task.function not in imported["callables"]:
            return self._fail(result, ErrorKind.MISSING, missing_function_message(
                task, rubric, imported["callables"], self.sub))
        needed = needed_failed_import(self.sub, task, imported)
        if needed:
            return self._fail(result, ErrorKind.IMPORT, needed)
        training = imported.get("training")
        epochs, batch_size, found = training_settings(task, rubric, training)
        found += checks.budget_findings(task, epochs, batch_size, rubric.training.max_batch_size,
                                        "TRAINING" if training and task.id in training else
                                        "The rubric")
        result.epochs, result.batch_size = epochs, batch_size
        trainable = all(f.ok or f.severity != "error" for f in found)
        if quick:
            epochs = min(epochs, rubric.quick.epochs)
        if task.same_as is not None and task.same_as not in self.descriptions:
            desc = self._describe_only(rubric.task(task.same_as))
            if desc is not None:
                self.descriptions[task.same_as] = desc
        left = self.deadline - time.monotonic()
        limit = self.options.task_timeout_s or (rubric.quick.timeout_s if quick
                                                else task.timeout_s)
        timeout = min(limit, max(left, 1.0))
        why_limit = (f"what was left of the submission's time limit of "
                     f"{self.submission_timeout_s:.0f} s" if timeout < limit else
                     "the time limit for this task")
        self._started(task, epochs if trainable else 0)
        spe = self.options.steps_per_execution
        if quick:  # at least two calls into the backend: the estimate needs a steady one
            steps = math.ceil(self.results.data["n_train_used"] / batch_size)
            spe = min(spe, max(1, steps // 2))
        request = task_request(task, rubric, self.seed, train=trainable, epochs=epochs,
                               batch_size=batch_size, data=self.bundle,
                               steps_per_execution=spe,
                               recheck=not quick, validate=not quick,
                               dtype_policy=self.options.dtype_policy)
        result.findings = found

        def train_if(desc: dict) -> bool:
            self.descriptions[task.id] = result.description = desc
            result.params_total = desc.get("params_total")
            result.params_trainable = desc.get("params_trainable")
            result.findings += self._structure(task, desc, training)
            return all(f.ok or f.severity != "error" for f in result.findings)

        turn = self._build_and_train(task, request, timeout, train_if, result)
        described, reply = turn.described, turn.reply
        stage = "training" if described else "building the model"
        if described is None and isinstance(reply, dict) and reply.get("description") and \
                turn.child is self.trainer:
            self.descriptions[task.id] = reply["description"]
            result.findings += self._structure(task, reply["description"], training)
        if isinstance(reply, Ended):
            if reply.reason == "protocol":
                reason = f"{task.function}: the process running the submission {reply.message}."
            else:
                reason = f"{task.function}: {stage} {reply.message}" + {
                    "timeout": f" ({why_limit}; an endless loop, or a model far too large for "
                               f"the budget?)",
                    "memory": " (a model with far too many parameters, or data copied many "
                              "times?)"}.get(reply.reason, ".")
            self._fail(result, _ENDED_KIND.get(reply.reason, ErrorKind.CRASH), reason)
        else:
            apply_reply(result, reply, task=task, rubric=rubric, sub=self.sub, test=self.test,
                        quick=quick)
            if result.test_accuracy is not None:
                self._more_seeds(task, request, result, timeout)
        if not result.output_tail:
            result.output_tail = turn.output
        checks.decide(task, result, quick)

    def _started(self, task: Task, epochs: int) -> None:
        with self.shared.lock:
            self.progress.task_started(task, epochs)

    def _event(self, msg: dict) -> None:
        with self.shared.lock:
            self.progress.event(msg)

    def _record_environment(self) -> None:
        with self.shared.lock:
            self._record_environment_locked()

    def _record_environment_locked(self) -> None:
        """Once the first child has said hello: its device, versions and sandbox."""
        first = self.builders.first
        hello, env = first.hello, self.results.environment
        if hello is None or env.get("device"):
            return
        env.update(device=hello["device"], versions=hello["versions"],
                   determinism=hello["determinism"], network_blocked=hello["network_blocked"],
                   sandbox=first.sandbox_record(),
                   child_start_s=round(first.start_s, 2))
        if env["sandbox"]["kind"] == "none":
            self.results.notes.append(Finding(
                "sandbox", False, "Graded WITHOUT a sandbox: the student's code could "
                "read any file this user can read. " + env["sandbox"]["why"]
                + ". Install bubblewrap, or run on Linux 5.13+ (Landlock); `grader "
                "doctor` says what is missing.", severity="warning"))
        unused = unused_gpus(hello["device"])
        if unused:
            env["gpu_warning"] = unused
            self.results.notes.append(Finding("device", False, unused, severity="warning"))

    def _structure(self, task: Task, desc: dict, training) -> list[Finding]:
        rubric = self.rubric

        def settings(t: Task) -> dict:
            epochs, batch_size, _ = training_settings(t, rubric, training)
            return {"epochs": epochs, "batch_size": batch_size}

        other = rubric.task(task.same_as) if task.same_as else None
        found = checks.structure_findings(task, rubric, desc, _default_compile(desc, rubric),
                                          self.descriptions.get(task.same_as), settings(task),
                                          settings(other) if other else None)
        if other is not None and other.id in self.shared.claimed:
            found.append(Finding("custom_code", False, f"Compared with {other.function}'s model "
                                 f"as your own code describes it (its custom code cannot be "
                                 f"rebuilt by the grader): held for a TA.",
                                 severity=checks.REVIEW))
        return found

    def _more_seeds(self, task: Task, request: dict, result: TaskResult,
                    timeout: float) -> None:
        """Re-train with further seeds when asked, or when the first run is borderline.

        Every seed counts: one that ends in NaN, crashes, times out or cannot start before
        the submission's time limit is a failed run (0% in the mean, named in the reason),
        so an unstable model is not judged on its lucky seeds.  The curves and confusion
        matrix stay those of the first seed (``shown_seed``)."""
        rubric, y_test = self.rubric, self.test.y
        wanted = self.options.seeds
        band = rubric.fairness.borderline_band
        if task.threshold is not None and abs(result.test_accuracy - task.threshold) <= band:
            result.borderline = True
            wanted = max(wanted, rubric.fairness.borderline_seeds)
        result.shown_seed = request["seed"]
        result.runs = [{"seed": request["seed"], "test_accuracy": result.test_accuracy,
                        "train_s": result.timings.get("train_s"),
                        "epochs_run": result.epochs_run}]
        for i in range(1, wanted):
            seed = request["seed"] + i
            left = self.deadline - time.monotonic()
            if left < 1.0:
                result.runs.append({"seed": seed, "error": "not run: the submission's time "
                                                           "limit was used up"})
                continue
            self._started(task, request["epochs"])
            reply = self._again(task, {**request, "seed": seed}, min(timeout, left))
            if isinstance(reply, Ended):
                result.runs.append({"seed": seed, "error": reply.message})
                continue
            if reply.get("nan"):
                result.runs.append({"seed": seed, "error": f"the loss became NaN at epoch "
                                                           f"{reply['nan'].get('epoch')}"})
                continue
            preds, problem = read_predictions(reply, len(y_test), rubric.num_classes) \
                if reply.get("ok") else (None, (reply.get("error") or {}).get("message"))
            if problem:
                result.runs.append({"seed": seed, "error": problem})
                continue
            acc, _, _ = checks.accuracy_and_confusion(preds, y_test, rubric.num_classes)
            result.runs.append({"seed": seed, "test_accuracy": acc,
                                "train_s": (reply.get("timings") or {}).get("train_s"),
                                "epochs_run": reply.get("epochs_run")})
        accs = [r.get("test_accuracy", 0.0) for r in result.runs]
        result.test_accuracy = statistics.fmean(accs)
        result.test_accuracy_std = statistics.stdev(accs) if len(accs) > 1 else None


    def _build_and_train(self, task: Task, request: dict, timeout: float, train_if,
                         result: TaskResult | None = None) -> "Turn":
        """The builder builds and exports the model; the trainer rebuilds it from that
        configuration and trains it.  A configuration that cannot cross (custom code: the
        parent's check or the trainer's says so) is trained in the builder and held, or
        fails, as the rubric's ``custom_code`` says; ``result`` (None for a further seed)
        gets the finding that says why."""
        t_end = time.monotonic() + timeout
        with self.builders.hold() as builder:
            mark = builder.output_mark
            exported = builder.export(request, timeout)
            output = builder.output_tail(since=mark)
        if isinstance(exported, Ended) or not exported.get("ok"):
            return Turn(None, exported, builder, output)
        reasons = crossing_problems(exported)
        if not reasons:
            described, reply = self.trainer.run(to_trainer(request, exported),
                                                max(t_end - time.monotonic(), 1.0),
                                                self._event, train_if)
            if isinstance(reply, dict) and reply.get("cannot_rebuild"):
                reasons = [reply["cannot_rebuild"]]  # keras' own check, stricter than ours
            else:
                if isinstance(reply, dict):  # what the builder did: the report says it
                    reply = {**reply, **{k: exported[k] for k in
                                         ("builder_events", "builder_writes",
                                          "notebook_compile") if k in exported}}
                return Turn(described, reply, self.trainer, output)
        why = custom_code_message(task, exported, reasons)
        if self.rubric.fairness.custom_code == "fail":
            if result is not None:
                result.findings.append(Finding("custom_code", False, why + " The rubric fails "
                                               "such a model (custom_code = \"fail\")."))
                result.description = exported.get("description")
            return Turn(None, {**exported, "ev": "result"}, builder, output)
        with self.shared.lock:
            self.shared.claimed.add(task.id)
        if result is not None:
            result.findings.append(Finding(
                "custom_code", False, why + " It was trained in the process that runs your "
                "code, so its result rests on that code: a pass is held for a TA.",
                severity=checks.REVIEW))
        with self.builders.hold() as builder:
            mark = builder.output_mark
            if isinstance(builder.ensure(), Ended):
                return Turn(None, Ended("exited", "the submission could not be imported"),
                            builder, output)
            described, reply = builder.run(request, max(t_end - time.monotonic(), 1.0),
                                           self._event, train_if)
            if isinstance(reply, Ended):
                builder.close()
            output += builder.output_tail(since=mark)
        return Turn(described, reply, builder, output[-4000:])

    def _again(self, task: Task, request: dict, timeout: float) -> dict | Ended:
        """The task built and trained once more, from another seed: its builder runs again
        (what it builds may depend on the seed), and the model is trained where the first
        seed's was."""
        with self.builders.hold() as builder:
            imported = builder.ensure()
        if isinstance(imported, Ended) or not imported.get("ok"):
            return Ended("exited", "the submission could not be imported")
        return self._build_and_train(task, request, timeout, lambda desc: True).reply

    def _describe_only(self, task: Task) -> dict | None:
        """The description of a model that another task is compared with, built (not
        trained) for that: the trainer's account of the rebuilt model, or None when it does
        not build.  A model that cannot cross is described by the builder: its own account,
        which holds the task compared with it (``_structure``)."""
        limit = self.rubric.limits.import_timeout_s
        request = task_request(task, self.rubric, self.seed, train=False,
                               dtype_policy=self.options.dtype_policy)
        with self.builders.hold() as builder:
            imported = builder.ensure()
            if isinstance(imported, Ended) or not imported.get("ok") or \
                    task.function not in imported["callables"]:
                return None
            exported = builder.export(request, limit)
        if isinstance(exported, Ended) or not exported.get("ok"):
            return None
        if crossing_problems(exported):
            with self.shared.lock:
                self.shared.claimed.add(task.id)
            return exported.get("description")
        _, reply = self.trainer.run(to_trainer(request, exported), limit, None,
                                    lambda desc: False)
        if isinstance(reply, dict) and reply.get("cannot_rebuild"):
            with self.shared.lock:
                self.shared.claimed.add(task.id)
            return exported.get("description")
        if isinstance(reply, Ended) or not reply.get("ok"):
            return None
        return reply.get("description")


class Turn(NamedTuple):
    """One task's exchange with the children: the ``described`` message (None when the
    model was not described before training), the reply or why it ended, the process
    that replied, and what the student's code printed meanwhile."""

    described: dict | None
    reply: dict | Ended
    child: object
    output: str


def crossing_problems(exported: dict) -> list[str]:
    """Why an exported model cannot be rebuilt by the trainer: empty when it can."""
    if exported.get("cannot_export"):
        return [exported["cannot_export"]]
    if not isinstance(exported.get("architecture"), dict):
        return ["no configuration was exported"]
    return architecture.problems(exported["architecture"]) + \
        architecture.problems(exported.get("compile_config") or {})


def custom_code_message(task: Task, exported: dict, reasons: list[str]) -> str:
    """Why the model cannot cross, naming its custom layers with the keras class each
    derives from (as the builder describes them: a name, not a verdict)."""
    layers = ((exported.get("description") or {}).get("layers") or [])
    custom = [f"`{l.get('class_name')}` (a subclass of {l.get('keras_class')})" for l in layers
              if l.get("custom") and l.get("keras_class") != l.get("class_name")][:5]
    named = f" Custom layers: {', '.join(custom)}." if custom else ""
    return (f"The model {task.function} returns cannot be rebuilt from its configuration: "
            f"{'; '.join(reasons[:3])}.{named} The grader trains plain keras models (keras' "
            f"own layers, losses and optimizers) in a process of its own.")


def to_trainer(request: dict, exported: dict) -> dict:
    """The trainer's request: the task's budget and data with the exported model."""
    return {**request, "architecture": exported["architecture"],
            "compile_config": exported.get("compile_config"),
            "seed_states": exported.get("seed_states") or {}}


def _default_compile(desc: dict, rubric: Rubric) -> dict:
    student = desc.get("compile") or {}
    if student.get("compiled"):
        return student
    return {"loss": {"name": rubric.training.loss, "from_logits": False}}
