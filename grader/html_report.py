"""The HTML feedback report: one self-contained file rendered from ``results.json`` alone.

Templates ship in ``grader/templates``; plots are inline SVG, thumbnails
inline PNG, CSS inline, and a Content-Security-Policy forbids the page from
loading anything from anywhere, so it reads the same offline, mailed, or
uploaded to an LMS.
"""
from __future__ import annotations

import datetime as _dt
from pathlib import Path

from . import atomic, plots
from .feedback import feedback, last_value as _last
from .rendering import render
from .results import CHECKED, PASSED, Results, TaskResult, load_results

REPORT_FILE = "report.html"


def _confusion(t: TaskResult, names: list[str]) -> dict | None:
    if not t.confusion_matrix:
        return None
    rows = []
    for i, row in enumerate(t.confusion_matrix):
        total = max(sum(row), 1)
        rows.append({"name": names[i] if i < len(names) else str(i),
                     "cells": [{"count": c, "share": c / total, "diag": i == j}
                               for j, c in enumerate(row)],
                     "accuracy": (t.per_class_accuracy or [None] * len(row))[i]})
    return {"names": names, "rows": rows}


def _epochs(history: dict) -> int:
    return max((len(v) for v in (history or {}).values()), default=0)


def _task_view(t: TaskResult, results: Results) -> dict:
    ref = t.reference or {}
    names = results.data.get("class_names") or [str(i) for i in range(10)]
    view = {"t": t, "ref": ref, "feedback": feedback(t, t.max_epochs or 0, quick=not results.graded),
            "failed_findings": [f for f in t.findings if not f.ok],
            "passed_findings": [f for f in t.findings if f.ok],
            "train_acc": _last(t.history, "accuracy"), "val_acc": _last(t.history, "val_accuracy"),
            "confusion": _confusion(t, names), "curves": None, "comparison": None}
    # A curve needs two epochs; a quick run's one epoch on a subset would only look like
    # a result (and drawing costs a quick check seconds).
    if _epochs(t.history) >= 2:
        view["curves"] = plots.learning_curves(
            t.history, ref.get("val_accuracy") if ref.get("comparable") else None, t.threshold)
    other = results.task(t.compare_with) if t.compare_with else None
    if results.graded and other is not None and _epochs(t.history) >= 2 and \
            _epochs(other.history) >= 2:
        labels = ["training", "validation", "test"]
        series = {other.id: [_last(other.history, "accuracy"), _last(other.history,
                                                                     "val_accuracy"),
                             other.test_accuracy],
                  t.id: [view["train_acc"], view["val_acc"], t.test_accuracy]}
        gap = {k: (v[0] - v[1]) if v[0] is not None and v[1] is not None else None
               for k, v in series.items()}
        view["comparison"] = {
            "other": other, "gap": gap,
            "bars": plots.bars(labels, series, "accuracy (last epoch; test)"),
            "curves": plots.learning_curves(t.history, None, None,
                                            others={other.id: other.history.get("val_accuracy")})}
    return view


def _sections(results: Results) -> list[dict]:
    """Tasks in lab order, each comparison right after the later of its two tasks."""
    order = [t.id for t in results.tasks]
    sections = []
    for t in results.tasks:
        sections.append({"kind": "task", **_task_view(t, results)})
        for c in results.comparisons:
            if max(order.index(c.task), order.index(c.baseline)) == order.index(t.id):
                a, b = results.task(c.task), results.task(c.baseline)
                sections.append({"kind": "comparison", "c": c, "a": a, "b": b,
                                 "bars": plots.bars(["test accuracy"],
                                                    {c.task: [a.test_accuracy],
                                                     c.baseline: [b.test_accuracy]},
                                                    "test accuracy")
                                 if a.test_accuracy is not None and
                                 b.test_accuracy is not None else None})
    return sections


def render_report(results: Results) -> str:
    passed = sum(t.status == PASSED for t in results.tasks)
    checked = sum(t.status == CHECKED for t in results.tasks)
    when = results.finished_at or results.started_at
    try:
        when = _dt.datetime.fromisoformat(when).strftime("%Y-%m-%d %H:%M UTC")
    except (TypeError, ValueError):
        pass
    return render("report.html.j2",
        r=results, sections=_sections(results), passed=passed, checked=checked, graded_at=when)


def write_report(results: Results | str | Path, path: str | Path) -> Path:
    if not isinstance(results, Results):
        results = load_results(Path(results))
    return atomic.write_text(path, render_report(results))
