"""Grade one submission: the library function behind ``grader check``.

    results = grader.check("lab.py", data="~/cifar10.npz", tasks=["fc"], out="out/")

Loads the rubric and data in this process, runs the student's code in a child
(``sandbox.Child``), checks what comes back, and returns a ``Results``.  With
``out`` the results file is rewritten after every task, so nothing finished is
lost if the run is stopped.
"""
from __future__ import annotations

import datetime as _dt
import difflib
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

from . import __version__, checks
from .data import Dataset, Split, load_dataset, make_split
from .errors import GraderError, UsageError
from .reporting import NullReporter, Reporter
from .results import ERROR, Finding, Results, TaskResult, save_results
from .rubric import Rubric, Task, load_rubric
from .sandbox import Child, Ended, SandboxLimits, student_output
from .images import most_confident_mistakes
from .imports import needed_failed_import, submission_notes
from .submission import (Submission, load_submission, missing_function_message,
                         training_settings, training_table_findings)

RESULTS_FILE = "results.json"
# Measured on the 2-core CPU (benchmarks/overhead.py, README): the same numbers as 1, less
# time in Python between batches.
DEFAULT_STEPS_PER_EXECUTION = 32
# keras dtype policies a run may opt into; None trains in float32 as the student would.
MIXED_PRECISION = (None, "mixed_float16", "mixed_bfloat16")


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


class _Session:
    """One child and the submission imported into it; restarted after a crash or timeout."""

    def __init__(self, submission: Submission, rubric: Rubric, workroot: Path,
                 limits: SandboxLimits, bundle: Path | None = None):
        self.limits = limits
        self.bundle = bundle
        self.submission = submission
        self.rubric = rubric
        self.workroot = workroot
        self.child: Child | None = None
        self.hello: dict | None = None
        self.imported: dict | None = None
        self.import_failure: dict | Ended | None = None
        self.import_output = ""
        self.starts = 0

    def ensure(self) -> dict | Ended:
        """A child with the submission imported: the ``imported`` message or why not."""
        if self.child is not None and self.child.proc.poll() is None:
            return self.imported
        if self.import_failure is not None:
            return self.import_failure  # imported once: the file fails the same way again
        self.close()
        self.starts += 1
        workdir = self.workroot / f"child-{self.starts}"
        workdir.mkdir()
        self.child = Child(workdir, self.limits, self.bundle)
        hello = self.child.wait_for("hello", self.rubric.limits.import_timeout_s)
        if isinstance(hello, Ended):
            tail = self.child.output.text().strip().splitlines()[-5:]
            raise GraderError("Could not start keras in a child process: " + hello.message
                              + (": " + " / ".join(tail) if tail else ""),
                              hint="Check that keras and a backend (TensorFlow, JAX or PyTorch) "
                                   "import in this Python: python -c 'import keras'.")
        self.hello = hello
        self.child.send({"op": "import",
                         "path": str(self.submission.module_path(workdir))})
        imported = self.child.wait_for("imported", self.rubric.limits.import_timeout_s)
        if isinstance(imported, Ended) or not imported.get("ok"):
            self.imported = None
            self.import_failure, self.import_output = imported, self.output_tail()
            return imported
        self.imported = imported
        return imported

    def output_tail(self, since: int = 0) -> str:
        """What the student's code printed (since ``since``), without the backend's own
        start-up logging, the last 4,000 characters."""
        if self.child is None:
            return ""
        return student_output(self.child.output.text(since=since))[-4000:]

    def close(self) -> None:
        if self.child is not None:
            self.child.close()
            self.child = None


def _sandbox_record(session: _Session) -> dict:
    """What actually confined the child: what the parent chose, as the child reports it."""
    chosen = session.limits.confinement
    reported = session.hello.get("sandbox") or {}
    why = chosen.why if chosen else "no sandbox was chosen"
    if reported.get("problem"):
        why += f"; but {reported['problem']}"
    out = {"kind": reported.get("kind", "none"), "why": why}
    if reported.get("landlock"):
        out["landlock"] = reported["landlock"]
    return out


def _import_failure(imported, sub: Submission, limit: float) -> tuple[str, dict | None]:
    name = sub.name
    if isinstance(imported, Ended):
        if imported.reason == "timeout":
            return (f"Importing {name} did not finish within {limit:.0f} s. Code at the top level "
                    f"of the file (an endless loop, or training a model outside a function) runs "
                    f"on import: move it into a function or under "
                    f"`if __name__ == \"__main__\":`."), None
        return f"Importing {name} stopped the process: {imported.message}.", None
    err = imported["error"]
    return (f"{name} could not be imported: {err['type']}: {err['message']}"
            f"{_where(err, sub)}"), err


def check(submission: str | Path, *, data: str | Path | None = None,
          dataset: Dataset | None = None, rubric: str | Path | Rubric | None = None,
          tasks=None, seed: int | None = None, quick: bool = False,
          out: str | Path | None = None, reporter: Reporter | None = None,
          steps_per_execution: int = DEFAULT_STEPS_PER_EXECUTION,
          task_timeout_s: float | None = None, memory_mb: int | None = None,
          resume: bool = False, reference: str | Path | None = None,
          data_cache: Path | None = None, seeds: int = 1,
          submission_timeout_s: float | None = None, gpu: str | None = None,
          gpu_shared: bool = False, mixed_precision: str | None = None,
          sandbox: str = "auto") -> Results:
    """Grade one submission and return its results (also written to ``out``/results.json).

    ``task_timeout_s`` and ``memory_mb`` override the rubric's limits; ``resume``
    keeps the tasks already in ``out``/results.json from a run of the same
    submission, rubric, seed, mode and data, and grades only the rest.
    ``reference`` is the reference results file to compare with (default:
    ``reference/results/<dataset>.json`` beside the rubric's folder).
    ``data_cache`` is a folder where the arrays handed to children are written once
    and reused by later calls (batch grading), instead of once per submission.
    ``seeds`` trains every task that many times (seed, seed+1, ...) and judges the
    mean; a task within the rubric's borderline band of its threshold is re-trained
    up to ``borderline_seeds`` times whatever ``seeds`` says.
    ``gpu`` is the id of the one GPU the child may use (default: those the grader sees);
    ``gpu_shared`` says other gradings train on it too (memory is then allocated on demand).
    ``mixed_precision`` ("mixed_float16" or "mixed_bfloat16") builds and trains every model
    under that keras dtype policy: an opt-in, since it changes the numbers; recorded in the
    results, and such runs are not compared with a float32 reference.
    ``sandbox`` ("auto", "bubblewrap", "landlock" or "none") picks how the child is
    confined (``confine.py``); "auto" takes the best this machine allows.
    """
    if mixed_precision not in MIXED_PRECISION:
        raise UsageError(f"mixed_precision must be one of "
                         f"{', '.join(repr(p) for p in MIXED_PRECISION if p)} or None. "
                         f"Received: {mixed_precision!r}")
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
        raise UsageError(f"seeds must be a positive integer. Received: {seeds!r}")
    rubric = rubric if isinstance(rubric, Rubric) else load_rubric(rubric)
    if task_timeout_s is not None and task_timeout_s <= 0:
        raise UsageError(f"The task timeout must be positive. Received: {task_timeout_s}")
    if submission_timeout_s is not None and submission_timeout_s <= 0:
        raise UsageError(f"The submission timeout must be positive. Received: "
                         f"{submission_timeout_s}")
    if memory_mb is not None and memory_mb < 256:
        raise UsageError(f"The memory limit must be at least 256 MiB. Received: {memory_mb}")
    from . import confine
    if sandbox not in ("auto", *confine.KINDS):
        raise UsageError(f"sandbox must be one of auto, {', '.join(confine.KINDS)}. "
                         f"Received: {sandbox!r}")
    confinement = confine.detect(sandbox)
    if sandbox not in ("auto", "none") and confinement.kind != sandbox:
        raise UsageError(f"--sandbox {sandbox} was asked for, but {confinement.why}.",
                         hint="Run `grader doctor` to see what protects this machine, or "
                              "choose --sandbox auto.")
    limits = SandboxLimits(memory_mb=memory_mb or rubric.limits.memory_mb,
                           max_file_mb=rubric.limits.max_file_mb,
                           block_network=rubric.limits.block_network, gpu=gpu,
                           gpu_shared=gpu_shared, confinement=confinement)
    sub = load_submission(submission)
    selected = select_tasks(rubric, tasks)
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
        raise UsageError(f"seed must be a non-negative integer. Received: {seed!r}")
    if steps_per_execution < 1:
        raise UsageError(f"steps_per_execution must be >= 1. Received: {steps_per_execution}")
    seed = rubric.seed if seed is None else seed
    reporter = reporter or NullReporter()
    out_path = Path(out) / RESULTS_FILE if out is not None else None
    if dataset is None:
        dataset = load_dataset(data, rubric.input_shape, rubric.num_classes, rubric.dataset)
    q = rubric.quick
    split = make_split(dataset, rubric.validation_fraction, rubric.split_seed,
                       *((q.train_samples, q.val_samples, q.test_samples) if quick else ()))
    y_test = dataset.y_test[split.test_index]
    results = Results(
        submission=sub.describe(),
        rubric={"id": rubric.id, "version": rubric.version, "path": rubric.path,
                "sha256": rubric.sha256},
        mode="quick" if quick else "full", seed=seed, started_at=_now(),
        data={**dataset.describe(), "n_train_used": int(len(split.x_train)),
              "n_val": int(len(split.x_val)), "n_test_used": int(len(split.x_test)),
              "validation_fraction": rubric.validation_fraction, "split_seed": rubric.split_seed,
              "class_names": list(rubric.class_names)},
        environment={"python": platform.python_version(), "platform": platform.platform(),
                     "steps_per_execution": steps_per_execution,
                     "dtype_policy": mixed_precision or "float32",
                     "limits": {"memory_mb": limits.memory_mb, "max_file_mb": limits.max_file_mb,
                                "task_timeout_s": task_timeout_s,
                                "submission_timeout_s": submission_timeout_s
                                or rubric.limits.submission_timeout_s}},
        grader_version=__version__)
    done = _resumable(out_path, results) if resume else {}

    def save():
        if out_path is not None:
            save_results(results, out_path)

    reporter.start(results, selected)
    with tempfile.TemporaryDirectory(prefix="grader-") as tmp:
        tmp = Path(tmp)
        bundle = shared_bundle(split, data_cache, dataset.fingerprint, quick) \
            if data_cache is not None else write_bundle(split, tmp / "data")
        session = _Session(sub, rubric, tmp, limits, bundle)
        try:
            _grade_tasks(session, rubric, selected, results, bundle, (split.x_test, y_test),
                         seed, quick, steps_per_execution, reporter, save, task_timeout_s, done,
                         seeds, submission_timeout_s or rubric.limits.submission_timeout_s)
        finally:
            session.close()
        results.environment["child_starts"] = session.starts
    by_id = {t.id: t for t in results.tasks}
    for comp in rubric.comparisons:
        if comp.task in by_id and comp.baseline in by_id:
            results.comparisons.append(checks.compare(comp, by_id, quick))
    from .errors import ResultsError
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
    results.finished_at = _now()
    save()
    reporter.finish(results)
    return results


def _grade_tasks(session: _Session, rubric: Rubric, selected: list[Task], results: Results,
                 bundle: Path, test: tuple[np.ndarray, np.ndarray], seed: int, quick: bool,
                 steps_per_execution: int, reporter: Reporter, save,
                 task_timeout_s: float | None, done: dict, seeds: int,
                 submission_timeout_s: float) -> None:
    deadline = time.monotonic() + submission_timeout_s
    x_test, y_test = test
    descriptions: dict[str, dict] = {}
    noted = False
    for task in selected:
        if task.id in done:
            results.tasks.append(done[task.id])
            if done[task.id].description:
                descriptions[task.id] = done[task.id].description
            reporter.task_finished(done[task.id])
            continue
        if time.monotonic() > deadline:
            results.tasks.append(TaskResult(
                task.id, task.question, task.title, task.function, status=ERROR,
                reason=f"Not graded: the submission's time limit of "
                       f"{submission_timeout_s:.0f} s was used up.",
                max_points=task.points, threshold=task.threshold))
            save()
            continue
        result = TaskResult(task.id, task.question, task.title, task.function, status=ERROR,
                            reason="", max_points=task.points, threshold=task.threshold,
                            max_epochs=task.max_epochs, compare_with=task.compare_with)
        results.tasks.append(result)
        imported = session.ensure()
        if session.hello is not None and not results.environment.get("device"):
            results.environment.update(device=session.hello["device"],
                                       versions=session.hello["versions"],
                                       determinism=session.hello["determinism"],
                                       network_blocked=session.hello["network_blocked"],
                                       sandbox=_sandbox_record(session))
            if results.environment["sandbox"]["kind"] == "none":
                results.notes.append(Finding(
                    "sandbox", False, "Graded WITHOUT a sandbox: the student's code could "
                    "read any file this user can read. " + results.environment["sandbox"]["why"]
                    + ". Install bubblewrap, or run on Linux 5.13+ (Landlock); `grader "
                    "doctor` says what is missing.", severity="warning"))
        if isinstance(imported, Ended) or not imported.get("ok"):
            result.reason, result.error = _import_failure(imported, session.submission,
                                                          rubric.limits.import_timeout_s)
            result.output_tail = session.import_output
            session.close()
            reporter.task_finished(result)
            save()
            continue
        if not noted:  # once per run: notes on the submission as a whole
            noted = True
            results.notes += training_table_findings(imported.get("training"), rubric) + \
                submission_notes(session.submission, rubric, imported)
        if task.function not in imported["callables"]:
            result.reason = missing_function_message(task, rubric, imported["callables"],
                                                     session.submission)
            reporter.task_finished(result)
            save()
            continue
        needed = needed_failed_import(session.submission, task, imported)
        if needed:
            result.reason = needed
            reporter.task_finished(result)
            save()
            continue
        epochs, batch_size, found = training_settings(task, rubric, imported.get("training"))
        found += checks.budget_findings(task, epochs, batch_size, rubric.training.max_batch_size,
                                        "TRAINING" if imported.get("training", {}) and
                                        task.id in (imported.get("training") or {}) else
                                        "The rubric")
        result.epochs, result.batch_size = epochs, batch_size
        trainable = all(f.ok or f.severity != "error" for f in found)
        if quick:
            epochs = min(epochs, rubric.quick.epochs)
        if task.same_as is not None and task.same_as not in descriptions:
            descriptions.update(_describe_only(session, rubric, rubric.task(task.same_as), seed))
        left = deadline - time.monotonic()
        limit = task_timeout_s or (rubric.quick.timeout_s if quick else task.timeout_s)
        timeout = min(limit, max(left, 1.0))
        why_limit = (f"what was left of the submission's time limit of "
                     f"{submission_timeout_s:.0f} s" if timeout < limit else
                     "the time limit for this task")
        reporter.task_started(task, epochs if trainable else 0)
        request = {"op": "task", "task": task.id, "function": task.function, "seed": seed,
                   "input_shape": list(rubric.input_shape), "num_classes": rubric.num_classes,
                   "optimizer": rubric.training.optimizer, "loss": rubric.training.loss,
                   "epochs": epochs, "batch_size": batch_size, "data": str(bundle),
                   "train": trainable, "steps_per_execution": steps_per_execution,
                   "recheck": not quick,
                   "dtype_policy": results.environment["dtype_policy"]}
        result.findings = found

        def train_if(desc: dict) -> bool:
            descriptions[task.id] = result.description = desc
            result.params_total = desc.get("params_total")
            result.params_trainable = desc.get("params_trainable")
            result.findings += _structure(task, rubric, desc, descriptions,
                                          imported.get("training"))
            return all(f.ok or f.severity != "error" for f in result.findings)

        mark = session.child.output.total
        described, reply = _run_task(session, request, timeout, reporter, train_if)
        stage = "training" if described else "building the model"
        if described is None and isinstance(reply, dict) and reply.get("description"):
            descriptions[task.id] = reply["description"]
            result.findings += _structure(task, rubric, reply["description"], descriptions,
                                          imported.get("training"))
        if isinstance(reply, Ended) and reply.reason == "protocol":
            result.reason = f"{task.function}: the process running the submission {reply.message}."
            result.output_tail = session.output_tail()
            session.close()
        elif isinstance(reply, Ended):
            result.reason = f"{task.function}: {stage} {reply.message}" + {
                "timeout": f" ({why_limit}; an endless loop, or a model far too large for the "
                           f"budget?)",
                "memory": " (a model with far too many parameters, or data copied many "
                          "times?)"}.get(reply.reason, ".")
            result.output_tail = session.output_tail()
            session.close()
        else:
            _apply_reply(task, rubric, result, reply, y_test, quick, session.submission, x_test,
                         results.data["n_val"])
            if result.test_accuracy is not None:
                _more_seeds(session, task, rubric, request, result, seeds, y_test, timeout,
                            reporter, deadline)
        if not result.output_tail:
            result.output_tail = session.output_tail(since=mark)
        checks.decide(task, result, quick)
        reporter.task_finished(result)
        save()


def _run_task(session: _Session, request: dict, timeout: float, reporter: Reporter,
              train_if) -> tuple[dict | None, dict | Ended]:
    """Send one task to the child.  When it has built and described the model,
    ``train_if(description)`` decides train or skip; the whole exchange shares ``timeout``.
    Returns the ``described`` message (None if the child answered without one) and the
    result, or why the child's turn ended."""
    t_end = time.monotonic() + timeout
    session.child.send(request)
    reply = session.child.wait_for(("described", "result"), timeout, on_event=reporter.event,
                                   task=request["task"])
    if not (isinstance(reply, dict) and reply.get("ev") == "described"):
        return None, reply
    session.child.send({"op": "train" if train_if(reply["description"]) else "skip"})
    return reply, session.child.wait_for("result", max(t_end - time.monotonic(), 1.0),
                                         on_event=reporter.event, task=request["task"])


def _describe_only(session: _Session, rubric: Rubric, task: Task, seed: int) -> dict:
    """Build (not train) a model that another task is compared with."""
    imported = session.ensure()
    if isinstance(imported, Ended) or not imported.get("ok") or \
            task.function not in imported["callables"]:
        return {}
    session.child.send({"op": "task", "task": task.id, "function": task.function, "seed": seed,
                        "input_shape": list(rubric.input_shape),
                        "num_classes": rubric.num_classes, "train": False,
                        "optimizer": rubric.training.optimizer, "loss": rubric.training.loss})
    reply = session.child.wait_for("result", rubric.limits.import_timeout_s, task=task.id)
    if isinstance(reply, Ended):
        session.close()
        return {}
    return {task.id: reply["description"]} if reply.get("ok") else {}


_STAGES = {"build": "building the model", "describe": "inspecting the model",
           "compile": "compiling the model", "train": "training", "predict": "predicting"}


def _structure(task: Task, rubric: Rubric, desc: dict, descriptions: dict,
               training) -> list[Finding]:
    def settings(t: Task) -> dict:
        epochs, batch_size, _ = training_settings(t, rubric, training)
        return {"epochs": epochs, "batch_size": batch_size}

    other = rubric.task(task.same_as) if task.same_as else None
    return checks.structure_findings(task, rubric, desc, _default_compile(desc, rubric),
                                     descriptions.get(task.same_as), settings(task),
                                     settings(other) if other else None)


def _where(err: dict, sub: Submission) -> str:
    """' (cell 3, In [13], line 5)' or ' (line 5)' for the error's last frame; the frames
    are rewritten to the student's own cells and lines (not those of the extracted module)."""
    frames = err.get("frames") or []
    if not frames:
        return ""
    where = sub.where(frames[-1].get("line"))
    if sub.notebook is not None:
        for fr in frames:
            pos = sub.notebook.position(fr.get("line"))
            if pos is not None and not fr.get("mapped"):
                fr["cell"] = pos[0] if sub.is_notebook else None
                fr["line"], fr["mapped"] = pos[1], True
    return where


def _name_error_hint(err: dict, sub: Submission) -> str:
    """The name a builder missed is set in a cell (or top-level code) the grader skipped."""
    if err.get("type") != "NameError" or sub.notebook is None:
        return ""
    for name, cell in sub.notebook.skipped_names.items():
        if f"'{name}'" in err.get("message", ""):
            where = (f"in {sub.notebook.cell_name(cell)}" if sub.is_notebook else
                     "in the script's top-level code")
            return (f" {name!r} is set {where}, which the grader does not run (it loads "
                    f"data, trains or plots): define it inside the function or "
                    + ("in a cell with only definitions" if sub.is_notebook else
                       "as a constant") + (", or use the input_shape argument"
                                           if name.lower().startswith("x_") else "") + ".")
    return ""


def _apply_reply(task: Task, rubric: Rubric, result: TaskResult, reply: dict,
                 y_test: np.ndarray, quick: bool, sub: Submission, x_test: np.ndarray,
                 n_val: int) -> None:
    desc = reply.get("description")
    result.timings = {k: float(v) for k, v in reply.get("timings", {}).items()
                      if isinstance(v, (int, float))}
    result.compile = reply.get("compile")
    events = reply.get("builder_events") or []
    if events:
        result.findings.append(Finding(
            "builder", True, f"{task.function} did more than build the model: "
            f"{'; '.join(events)}. Weights set in the builder do not count: the grader "
            f"re-initialises every model and trains it under the budget.", severity="warning"))
    nbc = reply.get("notebook_compile")
    compile_call = sub.notebook.compiles.get(task.function) if sub.notebook else None
    if nbc is not None and compile_call is not None:
        where = sub.notebook.place(compile_call["cell"], compile_call["line"])
        if nbc["applied"]:
            result.findings.append(Finding(
                "compile", True, f"Compiled as in {where}: `{compile_call['code']}` (your "
                f"configuration, taken from the cell that compiles the model).",
                severity="info"))
        elif not nbc.get("builder_compiled"):
            result.findings.append(Finding(
                "compile", False, f"The compile call in {where} (`{compile_call['code']}`) "
                f"could not be used ({nbc.get('why')}), so the grader's default (Adam, "
                f"sparse categorical cross-entropy) was used instead. Compile inside "
                f"{task.function} to be sure yours is used.", severity="warning"))
    for part, what in (reply.get("reinit") or {}).items():
        if what != "fresh":
            result.findings.append(Finding(
                "reinitialise", False, f"Before training, the grader gives every model fresh "
                f"weights and a fresh optimizer; here the {part} {what}.", severity="warning"))
    writes = reply.get("builder_writes") or []
    if writes:
        result.findings.append(Finding(
            "sandbox", False, f"{task.function} wrote outside its working directory: "
            f"{', '.join(writes)}. A submission may only write files in the folder it runs in."))
    if desc:
        result.description = desc
        result.params_total = desc.get("params_total")
        result.params_trainable = desc.get("params_trainable")
    if not reply.get("ok"):
        err = reply.get("error") or {}
        where = _where(err, sub)
        result.error = err
        result.reason = (f"{task.function}: {err.get('type')} while "
                         f"{_STAGES.get(reply.get('stage'), reply.get('stage'))}{where}: "
                         f"{err.get('message')}" + _name_error_hint(err, sub))
        result.status = ERROR
        return
    result.history = reply.get("history") or {}
    result.epochs_run = reply.get("epochs_run")
    nan = reply.get("nan")
    if nan:
        at = f"epoch {nan['epoch']}" + (f", batch {nan['batch']}" if nan.get("batch") else "")
        result.findings.append(Finding(
            "nan_loss", False, f"The loss became NaN or infinite at {at}, so training stopped. "
                               f"A learning rate that is too high is the usual cause: lower it "
                               f"(for Adam, try 1e-3 or 1e-4)."))
    result.status = "pending"  # decided by checks.decide from the findings and accuracy
    if "predictions" not in reply:  # built only: over budget, or a check failed before training
        return
    preds, problem = _predictions(reply, len(y_test), rubric.num_classes)
    if problem:
        if not nan:  # after a NaN loss the predictions are NaN too: one finding says it
            result.findings.append(Finding("predictions", False,
                                           f"The model's test predictions are unusable: "
                                           f"{problem}."))
        return
    acc, cm, per_class = checks.accuracy_and_confusion(preds, y_test, rubric.num_classes)
    result.confusion_matrix, result.per_class_accuracy = cm, per_class
    result.misclassified = most_confident_mistakes(preds, y_test, x_test, rubric.class_names)
    if quick:
        return
    result.test_accuracy = acc
    result.reinit_agreement = _reinit_agreement(reply, preds, rubric.num_classes)
    result.findings += checks.review_findings(result, rubric, n_val, len(y_test))


def _reinit_agreement(reply: dict, preds: np.ndarray, num_classes: int) -> float | None:
    """Share of the first test images on which the trained model and the same model
    re-initialised (the child's recheck) predict the same class."""
    if "predictions_reinit" not in reply:
        return None
    try:
        again = np.load(reply["predictions_reinit"], allow_pickle=False)
    except (OSError, ValueError):
        return 1.0  # the recheck was tampered with: treat as unchanged, for review
    n = len(again) if isinstance(again, np.ndarray) and again.ndim == 2 else 0
    if not n or n > len(preds) or again.shape[1] != num_classes or \
            not np.isfinite(again).all():
        return 1.0
    return float((again.argmax(axis=1) == preds[:n].argmax(axis=1)).mean())


def _predictions(reply: dict, n: int, num_classes: int):
    """The child's test predictions, checked: (array, None) or (None, why not)."""
    try:
        preds = np.load(reply["predictions"], allow_pickle=False)
    except (OSError, ValueError, KeyError) as exc:
        return None, f"cannot read the predictions: {exc}"
    problem = checks.validate_predictions(preds, n, num_classes)
    return (None, problem) if problem else (preds, None)


def _more_seeds(session: _Session, task: Task, rubric: Rubric, request: dict,
                result: TaskResult, seeds: int, y_test: np.ndarray, timeout: float,
                reporter: Reporter, deadline: float) -> None:
    """Re-train with further seeds when asked, or when the first run is borderline.

    Every seed counts: one that ends in NaN, crashes, times out or cannot start before the
    submission's time limit is a failed run (0% in the mean, named in the reason), so an
    unstable model is not judged on its lucky seeds.  The curves and confusion matrix stay
    those of the first seed (``shown_seed``)."""
    import statistics

    wanted = seeds
    band = rubric.fairness.borderline_band
    if task.threshold is not None and abs(result.test_accuracy - task.threshold) <= band:
        result.borderline = True
        wanted = max(wanted, rubric.fairness.borderline_seeds)
    result.shown_seed = request["seed"]
    result.runs = [{"seed": request["seed"], "test_accuracy": result.test_accuracy,
                    "train_s": result.timings.get("train_s"), "epochs_run": result.epochs_run}]
    for i in range(1, wanted):
        seed = request["seed"] + i
        left = deadline - time.monotonic()
        if left < 1.0:
            result.runs.append({"seed": seed, "error": "not run: the submission's time limit "
                                                       "was used up"})
            continue
        imported = session.ensure()
        if isinstance(imported, Ended) or not imported.get("ok"):
            result.runs.append({"seed": seed, "error": "the submission could not be imported"})
            continue
        reporter.task_started(task, request["epochs"])
        _, reply = _run_task(session, {**request, "seed": seed}, min(timeout, left), reporter,
                             lambda desc: True)
        if isinstance(reply, Ended):
            result.runs.append({"seed": seed, "error": reply.message})
            session.close()
            continue
        if reply.get("nan"):
            result.runs.append({"seed": seed, "error": f"the loss became NaN at epoch "
                                                       f"{reply['nan'].get('epoch')}"})
            continue
        preds, problem = _predictions(reply, len(y_test), rubric.num_classes) \
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


def _default_compile(desc: dict, rubric: Rubric) -> dict:
    student = desc.get("compile") or {}
    if student.get("compiled"):
        return student
    return {"loss": {"name": rubric.training.loss, "from_logits": False}}


def _resumable(path: Path | None, fresh: Results) -> dict[str, TaskResult]:
    """Finished tasks from an earlier run of exactly this grading job, by task id."""
    from .errors import ResultsError
    from .results import load_results

    if path is None or not path.is_file():
        return {}
    try:
        old = load_results(path)
    except ResultsError:
        return {}
    same = (old.submission.get("sha256") == fresh.submission["sha256"]
            and old.rubric.get("sha256") == fresh.rubric["sha256"] and old.seed == fresh.seed
            and old.mode == fresh.mode
            and old.environment.get("dtype_policy", "float32") == fresh.environment["dtype_policy"]
            and old.data.get("fingerprint") == fresh.data["fingerprint"])
    return {t.id: t for t in old.tasks} if same else {}
