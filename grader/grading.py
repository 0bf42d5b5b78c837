"""Grade one submission: the library function behind ``grader check``.

    results = grader.check("lab.py", data="~/cifar10.npz", tasks=["fc"], out="out/")
    results = grader.check("lab.py", GradeOptions(quick=True), data=...)

Loads the rubric and data in this process, has the builder run the student's code and
the trainers train what it exports (``lanes``, ``task_loop``, ``session``), checks what
comes back (``replies``, ``checks``), and returns a ``Results``.  With ``out`` the results file is rewritten after every task, so nothing
finished is lost if the run is stopped.
"""
from __future__ import annotations

import datetime as _dt
import difflib
import platform
import time
from pathlib import Path

import numpy as np

from . import __version__, cgroups, checks, confine, scratch
from .data import Dataset, Split, load_dataset, make_split
from .estimate import full_grade_estimate, over_limits
from .errors import ResultsError, UsageError
from .jobs import earlier_run, finished_run, job_identity, kept_tasks
from .lanes import LoopShared, Processes, default_lanes, run_lanes
from .options import GradeOptions, options_from
from .progress import GradeProgress
from .replies import TestSet
from .results import Finding, Results, save_results
from .rubric import Rubric, Task, load_rubric
from .sandbox import SandboxLimits
from .session import TrainerPool
from .submission import load_submission
from .task_loop import TaskLoop
from .written import extract_answers

RESULTS_FILE = "results.json"


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


def check(submission: str | Path, options: GradeOptions | None = None, *,
          data: str | Path | None = None, dataset: Dataset | None = None,
          rubric: str | Path | Rubric | None = None, out: str | Path | None = None,
          progress: GradeProgress | None = None, resume: bool = False,
          reference: str | Path | None = None, data_cache: Path | None = None,
          lanes: int | None = None, trainers: TrainerPool | None = None,
          confinement: "confine.Confinement | None" = None, **option_changes) -> Results:
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
    ``trainers`` is a pool whose trainers this run takes and gives back when it
    finishes, for the next submission (batch grading); by default each run starts its own.
    ``confinement`` is what ``confine.detect(options.sandbox)`` found, when the caller
    detected it once for many submissions.
    """
    options = options_from(options, option_changes)
    rubric = rubric if isinstance(rubric, Rubric) else load_rubric(rubric)
    if confinement is None:
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
    maybe_done = resume and finished_run(out_path, selected)
    finished = False
    with scratch.folder("grader-") as tmp:
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
                procs = Processes.make(n_lanes, sub, rubric, tmp, limits, bundle, trainers)
                procs.start()
            else:
                write_bundle(split, bundle)
            test = TestSet(split.x_test, dataset.y_test[split.test_index], len(split.x_val))
            deadline = time.monotonic() + results.environment["limits"]["submission_timeout_s"]
            shared = LoopShared()
            run_lanes([TaskLoop(procs.builders, trainer, results, options, bundle, test,
                                progress, save, deadline, shared)
                       for trainer in procs.trainers], selected, done)
            finished = True
        finally:
            if procs is not None:
                procs.close(finished)
        results.environment["child_starts"] = procs.starts
        results.environment["builder_starts"] = procs.builders.starts
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


