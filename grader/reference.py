"""Reference results: measured runs of the reference solutions, aggregated over seeds,
and the comparison every graded submission gets against them.

``reference/results/<rubric>.json`` has the schema of ``results.json`` for its
provenance fields, plus per task the runs (one per seed), the mean and spread
of test accuracy, and the mean validation-accuracy curve that reports overlay.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import json
import statistics
from pathlib import Path

from .errors import ResultsError
from .atomic import write_json
from .results import PASSED, Results

REFERENCE_SCHEMA = 1


def default_path(rubric) -> Path:
    """``reference/results/<dataset>.json`` beside the rubric's folder (a source checkout, or
    a course's own rubric and references), else the file shipped inside the package
    (``grader.references``), so that a pip-installed grader compares too."""
    beside = Path(rubric.path).resolve().parent.parent / "reference" / "results" / \
        f"{rubric.dataset}.json"
    if beside.is_file():
        return beside
    from importlib.resources import files
    return Path(str(files("grader") / "references" / f"{rubric.dataset}.json"))


def task_signature(task) -> str:
    """What was trained for one task: layers and their configuration, optimizer, loss,
    epochs and batch size, without the names keras numbers by build order.

    Runs of a reference file aggregate per task on this rather than on the file's hash,
    so that changing one reference model re-measures that model only."""
    layers = []
    for layer in (task.description or {}).get("layers", []):
        config = {k: v for k, v in (layer.get("config") or {}).items() if k != "name"}
        layers.append([layer.get("class_name"), config])
    what = {"function": task.function, "layers": layers, "compile": task.compile,
            "epochs": task.epochs, "batch_size": task.batch_size}
    return hashlib.sha256(json.dumps(what, sort_keys=True, default=str).encode()).hexdigest()[:16]


def aggregate(runs: list[Results], command: str, order: tuple[str, ...] = (),
              keep: dict | None = None) -> dict:
    """One reference file from several seeds' results of the reference solutions on the
    same data and rubric; every run of a task must have trained the same model.

    ``keep`` (an existing reference file): its tasks that none of ``runs`` measured are
    carried over whole, with their runs and where they were made, so one model can be
    re-measured (a changed model, another machine) without training the others again.
    A task the runs measured replaces the kept one entirely: seeds of one task are
    never mixed across files."""
    if not runs:
        raise ResultsError("No reference runs to aggregate.")
    first = runs[0]

    def differs(data: dict, rubric: dict) -> str | None:
        for key, a, b in (("data fingerprint", data.get("fingerprint"),
                           first.data.get("fingerprint")),
                          ("rubric", (rubric.get("id"), rubric.get("version")),
                           (first.rubric.get("id"), first.rubric.get("version")))):
            if a != b:
                return f"{key}: {a} vs {b}"
        return None

    if keep is not None:
        why = differs(keep.get("data") or {}, keep.get("rubric") or {})
        if why:
            raise ResultsError(f"The reference file to keep tasks from differs from the "
                               f"runs in its {why}.",
                               hint="Keep tasks only from a file measured on the same "
                                    "dataset and rubric.")
    for r in runs[1:]:
        why = differs(r.data, r.rubric)
        if why:
            raise ResultsError(f"Reference runs differ in their {why}.",
                               hint="Aggregate only runs on one dataset and rubric.")
    tasks = {}
    task_ids = list(dict.fromkeys(t.id for r in runs for t in r.tasks))  # runs may split tasks
    for tid in task_ids:
        done = [(r.seed, r.task(tid), r) for r in runs
                if r.task(tid) is not None and r.task(tid).test_accuracy is not None]
        if not done:
            continue
        signatures = {task_signature(t): r.submission.get("path") for _, t, r in done}
        if len(signatures) > 1:
            raise ResultsError(
                f"Reference runs of task {tid!r} trained different models (layers, optimizer, "
                f"loss or budget differ between {', '.join(sorted(set(signatures.values())))}).",
                hint="Re-run every seed of that task with the current reference file.")
        accs = [t.test_accuracy for _, t, _ in done]
        curves = [t.history.get("val_accuracy", []) for _, t, _ in done]
        length = min(len(c) for c in curves)
        t0 = done[0][1]
        tasks[tid] = {
            "runs": [{"seed": seed, "test_accuracy": t.test_accuracy, "status": t.status,
                      "train_s": t.timings.get("train_s"), "epochs_run": t.epochs_run,
                      "device": r.environment.get("device", {}).get("name"),
                      "cpu_isa": r.environment.get("device", {}).get("cpu_isa"),
                      "submission_sha256": r.submission.get("sha256")}
                     for seed, t, r in done],
            "n": len(done),
            "test_accuracy_mean": statistics.fmean(accs),
            "test_accuracy_std": statistics.stdev(accs) if len(accs) > 1 else None,
            "test_accuracy_min": min(accs), "test_accuracy_max": max(accs),
            "all_passed": all(t.status == PASSED for _, t, _ in done),
            "signature": next(iter(signatures)),
            "params_total": t0.params_total, "epochs": t0.epochs, "batch_size": t0.batch_size,
            "train_s_mean": statistics.fmean(t.timings.get("train_s", 0.0) for _, t, _ in done),
            "val_accuracy_mean": [statistics.fmean(c[i] for c in curves) for i in range(length)],
        }
    for tid, entry in ((keep or {}).get("tasks") or {}).items():
        if tid not in tasks:
            tasks[tid] = dict(entry)
            tasks[tid].setdefault("kept_from", {"created_at": keep.get("created_at"),
                                                "command": keep.get("command")})
    # The rubric's order; tasks it does not name after, as the runs (then the kept file)
    # list them.
    ids = sorted(tasks, key=lambda tid: order.index(tid) if tid in order else len(order))
    tasks = {tid: tasks[tid] for tid in ids}
    return {"reference_schema": REFERENCE_SCHEMA,
            "created_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "command": command, "submission": runs[-1].submission, "rubric": first.rubric,
            "data": first.data, "environment": first.environment,
            "seeds": sorted({r.seed for r in runs}), "grader_version": first.grader_version,
            "tasks": tasks}


def save_reference(ref: dict, path: Path) -> None:
    write_json(path, ref)


def load_reference(path: Path) -> dict | None:
    """The reference file at ``path``; None when there is none.  A file that exists but
    cannot be used raises ResultsError: the caller says so rather than comparing nothing
    in silence."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ResultsError(f"The reference file {path} cannot be read: {exc}",
                           hint="Restore it from the repository, or re-measure with "
                                "`grader reference`.") from None
    if not isinstance(data, dict) or data.get("reference_schema") != REFERENCE_SCHEMA or \
            not isinstance(data.get("tasks"), dict):
        got = data.get("reference_schema") if isinstance(data, dict) else type(data).__name__
        raise ResultsError(f"{path} is not a reference file of schema {REFERENCE_SCHEMA}. "
                           f"Received: reference_schema={got!r}",
                           hint="Re-measure with `grader reference`.")
    return data


def _backend(d: dict) -> str | None:
    return ((d.get("environment") or {}).get("device") or {}).get("backend")


def _dtype_policy(d: dict) -> str:
    """Runs from before --mixed-precision existed trained in float32."""
    return (d.get("environment") or {}).get("dtype_policy") or "float32"


def _identity(data: dict) -> tuple:
    """What makes two copies of a dataset the same dataset: its size and split.  Copies with
    other pixels (the official archive, a JPEG re-encoding) share it; a subset does not."""
    return (data.get("n_train"), data.get("n_test"), data.get("validation_fraction"),
            data.get("split_seed"))


def _identity_text(data: dict) -> str:
    return (f"{data.get('n_train')} training and {data.get('n_test')} test images, validation "
            f"fraction {data.get('validation_fraction')}")


def comparison(results: Results, ref: dict | None) -> dict[str, dict]:
    """Per task: how this run compares with the reference, or why it cannot.  The
    comparison is feedback, never a verdict; on another copy of the same dataset (another
    fingerprint) it is made with a caveat."""
    if ref is None:
        return {}
    why = None
    if ref["rubric"].get("id") != results.rubric.get("id"):
        why = f"the reference was measured for rubric {ref['rubric'].get('id')!r}"
    elif _identity(ref["data"]) != _identity(results.data):
        why = (f"the reference was measured on other data ({_identity_text(ref['data'])}; "
               f"this run: {_identity_text(results.data)})")
    elif _backend(ref) and _backend(vars(results)) and _backend(ref) != _backend(vars(results)):
        why = (f"the reference was trained on the {_backend(ref)} backend and this run on "
               f"{_backend(vars(results))}; the same model trains differently on each")
    elif _dtype_policy(vars(results)) != _dtype_policy(ref):
        why = (f"this run trained under the {_dtype_policy(vars(results))} dtype policy, "
               f"the reference in {_dtype_policy(ref)}")
    elif results.mode != "full":
        why = "a --quick run trains on a subset; the reference trained on the full data"
    out = {}
    for t in results.tasks:
        r = ref["tasks"].get(t.id)
        if why or r is None:
            out[t.id] = {"comparable": False,
                         "why": why or "the reference file has no measured runs of this task"}
            continue
        c = {"comparable": True, "test_accuracy_mean": r["test_accuracy_mean"],
             "fingerprint": ref["data"].get("fingerprint"),
             "test_accuracy_std": r["test_accuracy_std"], "n": r["n"],
             "params_total": r["params_total"], "epochs": r["epochs"],
             "train_s_mean": r["train_s_mean"], "val_accuracy": r["val_accuracy_mean"]}
        if ref["data"].get("fingerprint") != results.data.get("fingerprint"):
            c["caveat"] = (f"the reference was measured on another copy of this dataset "
                           f"(fingerprint {ref['data'].get('fingerprint')}, this run "
                           f"{results.data.get('fingerprint')}): pixel values may differ, so "
                           f"read differences under about a point as noise")
        if t.test_accuracy is not None:
            c["accuracy_diff_points"] = 100 * (t.test_accuracy - r["test_accuracy_mean"])
        if t.params_total and r["params_total"]:
            c["params_ratio"] = t.params_total / r["params_total"]
        if t.timings.get("train_s") and r["train_s_mean"]:
            c["train_time_ratio"] = t.timings["train_s"] / r["train_s_mean"]
        out[t.id] = c
    return out


def markdown_table(ref: dict) -> str:
    """The reference results as docs/reference.md shows them."""
    lines = ["| task | test accuracy (mean ± sd) | runs | parameters | epochs | batch | "
             "training time (mean) | measured on |", "|---|---|---|---|---|---|---|---|"]
    for tid, t in ref["tasks"].items():
        runs = ", ".join(f"{r['test_accuracy']:.4f} (seed {r['seed']})" for r in t["runs"])
        sd = f" ± {t['test_accuracy_std']:.4f}" if t["test_accuracy_std"] is not None else ""
        machines = dict.fromkeys(
            f"{r.get('device') or 'unknown'}" + (f" ({r['cpu_isa']})" if r.get("cpu_isa") else "")
            for r in t["runs"])
        lines.append(f"| {tid} | {t['test_accuracy_mean']:.4f}{sd} | {runs} | "
                     f"{t['params_total']:,} | {t['epochs']} | {t['batch_size']} | "
                     f"{t['train_s_mean']:.0f} s | {'; '.join(machines)} |")
    return "\n".join(lines)
