"""``index.html``: the class at a glance, linking every student's report."""
from __future__ import annotations

from pathlib import Path

from . import atomic, plots
from .rendering import render


def write_overview(out: Path, rows, rubric, task_ids: list[str], notes: list[str]) -> Path:
    graded = [r for r in rows if r.status == "graded"]
    tasks = []
    for tid in task_ids:
        t = rubric.task(tid)
        accs = [r.tasks[tid][1] for r in graded if r.tasks.get(tid, (None, None))[1] is not None]
        passed = sum(r.tasks.get(tid, ("",))[0] in ("passed", "checked") for r in graded)
        tasks.append({"t": t, "passed": passed, "n": len(graded),
                      "hist": plots.histogram(accs, f"{t.question} test accuracy", t.threshold)
                      if accs else None})
    quick = any(not r.graded for r in rows)
    scores = [r.points for r in graded if r.points is not None]
    top = max((r.max_points for r in rows if r.max_points is not None),
              default=rubric.max_points) or 1.0
    html = render("index.html.j2",
        rows=rows, tasks=tasks, task_ids=task_ids, rubric=rubric, notes=notes,
        link=lambda r: f"{r.folder}/report.html", quick=quick,
        score_hist=plots.histogram(scores, "points", None, bins=max(1, min(20, int(top * 2))),
                         upper=top, ylabel_integer=True) if scores else None,
        max_points=top,
        attention=[r for r in rows if r.problem])
    return atomic.write_text(Path(out) / "index.html", html)
