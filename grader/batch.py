"""Grading a whole class: discover submissions, grade them in parallel, resume, summarise.

Layouts understood (the student id is derived as shown):

- files, or a folder of files: ``alice.py`` -> ``alice``;
- a folder with one sub-folder per student (Moodle's and Gradescope's exports, or
  a TA's own): ``alice/lab.ipynb`` -> ``alice``;
- Canvas' flat export, ``name_[LATE_]userid_submissionid_file.py`` -> ``name``;
- Moodle's folders, ``Full Name_12345_assignsubmission_file_`` -> ``Full Name``.

Each submission's results live in ``OUT/<student>/``; a run finds what is done
there (same submission content, rubric, seed, mode and data) and grades only
the rest, so an interrupted batch is finished by running it again.
"""
from __future__ import annotations

import contextlib
import csv
import io
import os
import queue
import re
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

from . import atomic, cluster, confine, scratch
from .data import Dataset, load_dataset
from .environment import visible_gpus
from .errors import GraderError, SubmissionError, UsageError
from .grading import RESULTS_FILE, select_tasks
from .jobs import earlier_run, job_identity, kept_tasks
from .options import GradeOptions, options_from
from .plain_text import csv_cell
from .progress import BatchProgress
from .results import Results, load_results
from .rubric import Rubric, load_rubric
from .rows import Entry, Row, failed_row, grade_one, graded_row, student_folder
from .session import TrainerPool
from .submission import (NOT_WORK, SUFFIXES, candidates, inside, load_submission,
                         pick_file)

EXECUTORS = ("local", "ray")
_CANVAS = re.compile(r"^(?P<name>[A-Za-z0-9-]+?)_(?:LATE_)?\d+_\d+_.+$")
_MOODLE = re.compile(r"^(?P<name>.+?)_\d+_assignsubmission_\w*$")


def _student_from_name(name: str) -> str:
    for pattern in (_CANVAS, _MOODLE):
        m = pattern.match(name)
        if m:
            return m.group("name")
    return Path(name).stem if Path(name).suffix in SUFFIXES else name


def discover(paths) -> tuple[list[Entry], list[str]]:
    """Submissions under ``paths``, each with a unique student id; and notes for the TA."""
    entries, notes = [], []
    for raw in paths:
        p = Path(raw).expanduser()
        if not p.exists():
            raise UsageError(f"Not found: {p}", hint="Give submission files or folders.")
        if p.is_file():
            entries.append(Entry(_student_from_name(p.name), p.absolute()))
            continue
        files = sorted(f for f in p.iterdir() if f.is_file() and f.suffix in SUFFIXES
                       and not f.name.startswith("."))
        folders = sorted(d for d in p.iterdir() if d.is_dir() and not d.name.startswith(".")
                         and d.name not in NOT_WORK)
        for f in files:
            entries.append(Entry(_student_from_name(f.name), f.absolute(), p.absolute()))
        for d in folders:
            if d.is_symlink() and not inside(d, p):
                entries.append(Entry(_student_from_name(d.name), d.absolute(), refused=(
                    f"{d.name} is a symbolic link that leads outside {p}; the grader does "
                    f"not follow it")))
                continue
            # Hidden files and folders are skipped below the student's folder only: the
            # path above it (../subs, a checkout under ~/.courses) may hold dot-folders.
            inner = candidates(d)
            chosen = pick_file(inner)
            if chosen is None:
                notes.append(f"{d.name}: no .py or .ipynb file inside; nothing to grade")
                continue
            if len(inner) > 1:
                notes.append(f"{d.name}: {len(inner)} candidate files; graded {chosen.name}")
            entries.append(Entry(_student_from_name(d.name), chosen.absolute(), d.absolute()))
    # A second submission under one id is graded as id-2 (id-3, ...), never under an id
    # that another submission has already (alice.py, alice.ipynb and alice-2.py: three).
    taken = {e.student for e in entries}
    seen: set[str] = set()
    unique = []
    for e in entries:
        if e.student in seen:
            n = 2
            while f"{e.student}-{n}" in taken:
                n += 1
            new = f"{e.student}-{n}"
            notes.append(f"{e.student}: more than one submission; {e.path.name} is graded "
                         f"as {new}")
            taken.add(new)
            e = Entry(new, e.path, e.folder, e.refused)
        seen.add(e.student)
        unique.append(e)
    return unique, notes


def _done(path: Path, job: dict, task_ids: list[str]) -> Results | None:
    """A finished earlier run of the same job and tasks, else None."""
    r = earlier_run(path, job)
    if r is not None and r.finished_at and [t.id for t in r.tasks] == task_ids and \
            len(kept_tasks(r)) == len(task_ids):
        return r
    return None


def default_jobs(quick: bool = False) -> int:
    """One per GPU.  On a CPU, full grading runs one per four cores (two trainings on two
    cores halve each other), while quick checks, whose time is mostly single-threaded
    start-up, run one per core up to four (measured: docs/measurements.md)."""
    gpus = visible_gpus()
    if gpus:
        return len(gpus)
    cores = os.cpu_count() or 1
    return max(1, min(4, cores)) if quick else max(1, cores // 4)


def grade_batch(paths, out, options: GradeOptions | None = None, *, jobs: int | None = None,
                data=None, dataset: Dataset | None = None, rubric=None, formats=(),
                progress: BatchProgress | None = None, allow_unsandboxed: bool = False,
                executor: str = "local", ray_options=None,
                trainers: TrainerPool | None = None, data_cache: Path | None = None,
                **option_changes) -> list[Row]:
    """Grade every submission under ``paths`` into ``out``; never stops for one submission.

    ``options`` (and keyword overrides of its fields) apply to every submission.
    ``executor`` "local" grades ``jobs`` at once on this machine, each job on its own GPU;
    "ray" sends each submission to a Ray cluster (``cluster.RayOptions``; ``jobs`` is
    then the cluster's size).  Refuses to grade a class without a sandbox unless
    ``allow_unsandboxed``: a class's code is untrusted by definition.  A caller grading
    several classes in one process can keep its trainers from one call to the next:
    ``trainers`` (a ``session.TrainerPool``, which the caller closes) and ``data_cache``
    (the folder the data bundles are written to: a trainer is reused for the same
    bundle), as for ``check``."""
    if executor not in EXECUTORS:
        raise UsageError(f"executor must be one of {', '.join(EXECUTORS)}. "
                         f"Received: {executor!r}")
    from .formats import junit
    from .overview import write_overview

    options = options_from(options, option_changes)
    rubric = rubric if isinstance(rubric, Rubric) else load_rubric(rubric)
    task_ids = [t.id for t in select_tasks(rubric, options.tasks)]
    options = options.replace(tasks=tuple(task_ids))
    confinement = confine.detect(options.sandbox)
    if confinement.kind == "none" and not allow_unsandboxed:
        raise UsageError(f"Refusing to grade a class without a sandbox: {confinement.why}.",
                         hint="Install bubblewrap (apt-get install bubblewrap), or run on "
                              "Linux 5.13+ with Landlock; `grader doctor` says what is "
                              "missing. Only for code you trust: --allow-unsandboxed.")
    jobs = jobs or default_jobs(options.quick)
    if jobs < 1:
        raise UsageError(f"--jobs must be at least 1. Received: {jobs}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    entries, notes = discover(paths)
    if not entries:
        raise UsageError("No submissions found.", hint="Give .py or .ipynb files, or folders "
                                                      "holding them.")
    dataset = dataset or load_dataset(data, rubric.input_shape, rubric.num_classes,
                                      rubric.dataset)
    progress = progress or BatchProgress()
    rows: dict[str, Row] = {}
    todo = []
    for e in entries:
        try:
            if e.refused:
                raise SubmissionError(e.refused)
            sha = load_submission(e.path, within=e.folder).sha256
        except GraderError as exc:
            rows[e.student] = failed_row(e, "unreadable", exc.message, rubric, options, 0.0)
            continue
        done = _done(out / student_folder(e.student) / RESULTS_FILE,
                     job_identity(options, rubric, sha, dataset.fingerprint), task_ids)
        if done is not None:
            rows[e.student] = graded_row(e, done, cached=True, seconds=0.0)
        else:
            todo.append(e)
    progress.start(len(entries), len(entries) - len(todo))
    if executor == "ray":
        finished = cluster.run(todo, out, options, rubric=rubric, dataset=dataset,
                               formats=formats, ray_options=ray_options or cluster.RayOptions(),
                               progress=progress, folder_of=student_folder)
    else:
        finished = _run_local(todo, out, options, jobs, rubric=rubric, dataset=dataset,
                              formats=formats, progress=progress, confinement=confinement,
                              trainers=trainers, data_cache=data_cache)
    for e, row in finished:
        rows[row.student] = row
        progress.finished(e, row)
        write_grades(out / "grades.csv", [rows[e.student] for e in entries
                                          if e.student in rows], task_ids)
    ordered = [rows[e.student] for e in entries]
    write_grades(out / "grades.csv", ordered, task_ids)
    pairs = _similarity(out, rubric, notes)
    write_overview(out, ordered, rubric, task_ids, notes, pairs)
    if "junit" in formats:
        graded = [(r.student, load_results(out / r.folder / RESULTS_FILE))
                  for r in ordered if r.status == "graded"]
        atomic.write_text(out / "junit.xml", junit(graded))
    progress.finish(ordered)
    return ordered


def _similarity(out: Path, rubric: Rubric, notes: list[str]) -> list[dict]:
    """Similar pairs across the class, written to OUT/similarity.csv.  An analysis for a
    TA, not a grade: if it cannot run, the overview says so and the grades stand."""
    from .similarity import similar_pairs, write_pairs

    try:
        pairs = similar_pairs(out, rubric)
    except Exception as exc:  # the grades are written already; say why, keep them
        notes.append(f"similarity: not computed ({type(exc).__name__}: {exc})")
        return []
    write_pairs(out, pairs)
    return pairs


def _run_local(todo: list[Entry], out: Path, options: GradeOptions, jobs: int, *,
               rubric: Rubric, dataset: Dataset, formats, progress: BatchProgress,
               confinement: confine.Confinement, trainers: TrainerPool | None,
               data_cache: Path | None):
    """Grade ``todo`` on this machine, ``jobs`` at once; yield (entry, row) as each ends.
    The trainers are kept from one submission to the next (``TrainerPool``): each
    submission starts only its builder.  Without the caller's pool, the batch makes its
    own and closes it at the end."""
    # Each job holds one GPU while it grades, so that two trainings share a GPU only
    # when --jobs asks for more jobs than there are GPUs.
    gpus = visible_gpus()
    free_gpus: queue.Queue[str] = queue.Queue()
    for i in range(jobs if gpus else 0):
        free_gpus.put(gpus[i % len(gpus)])
    shared = bool(gpus) and jobs > len(gpus)

    with contextlib.ExitStack() as own:
        if trainers is None or data_cache is None:  # each taken on its own, as check does
            cache_dir = own.enter_context(scratch.folder("grader-batch-"))
            data_cache = data_cache or cache_dir
            if trainers is None:
                trainers = TrainerPool(cache_dir / "trainers")
                own.callback(trainers.close)  # before the folder it lives in goes

        def one(e: Entry) -> Row:
            gpu = free_gpus.get() if gpus else None
            progress.started(e)
            try:
                return grade_one(e, out, options.replace(gpu=gpu, gpu_shared=shared),
                                 rubric=rubric, dataset=dataset, data_cache=data_cache,
                                 formats=formats, trainers=trainers, confinement=confinement)
            finally:
                if gpu is not None:
                    free_gpus.put(gpu)

        with ThreadPoolExecutor(max_workers=jobs) as pool:
            futures = {pool.submit(one, e): e for e in todo}
            for fut in as_completed(futures):
                yield futures[fut], fut.result()


def write_grades(path: Path, rows: list[Row], task_ids: list[str]) -> None:
    """grades.csv: one row per student, the id exactly as discovered (but a cell that a
    spreadsheet would take for a formula starts with an apostrophe).  A quick run's rows
    have mode "quick", status "checked" or "failed" and empty points: not a grade."""
    f = io.StringIO()
    w = csv.writer(f)
    w.writerow(["student", "mode", "points", "max_points", "status", "problem", "file",
                "folder", "node", "device"] +
               [f"{t}_{k}" for t in task_ids for k in ("verdict", "test_accuracy")])
    for r in rows:
        cells = []
        for t in task_ids:
            status, acc = r.tasks.get(t, ("", None))
            cells += [status, "" if acc is None else f"{acc:.4f}"]
        w.writerow([csv_cell(c) for c in [
            r.student, r.mode, "" if r.points is None else f"{r.points:g}",
            "" if r.max_points is None else f"{r.max_points:g}", r.verdict,
            r.problem or "", r.path, r.folder, r.node, r.device] + cells])
    atomic.write_text(path, f.getvalue())
