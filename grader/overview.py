"""``index.html``: the class at a glance, linking every student's report."""
from __future__ import annotations

from pathlib import Path

from . import atomic, plots
from .rendering import render


def write_overview(out: Path, rows, rubric, task_ids: list[str], notes: list[str],
                   pairs: list[dict] = ()) -> Path:
    """The class's page; when ``grader review`` serves the desk, its front page links here."""
    graded = [r for r in rows if r.status == "graded"]
    tasks = []
    for tid in task_ids:
        t = rubric.task(tid)
        accs = [r.tasks[tid][1] for r in graded if r.tasks.get(tid, (None, None))[1] is not None]
        statuses = [r.tasks.get(tid, ("",))[0] for r in graded]
        passed = sum(s in ("passed", "checked") for s in statuses)
        tasks.append({"t": t, "passed": passed, "n": len(graded),
                      # built: the model was made and checked, whatever the verdict
                      "built": sum(s in ("passed", "checked", "failed", "held")
                                   for s in statuses),
                      "failed": statuses.count("failed"), "error": statuses.count("error"),
                      "held": statuses.count("held"),
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
        max_points=top, pairs=list(pairs), written=_written(out, rows, rubric),
        attention=[r for r in rows if r.problem])
    return atomic.write_text(Path(out) / "index.html", html)


def _written(out: Path, rows, rubric) -> list[dict]:
    """Per written question: how many answers were found, all still to grade on the desk
    (``grader review``)."""
    import json

    found = {q.id: 0 for q in rubric.written}
    for r in rows:
        path = Path(out) / r.folder / "results.json"
        if r.status != "graded" or not path.is_file():
            continue
        for a in json.loads(path.read_text()).get("written") or []:
            if a.get("found") and a.get("id") in found:
                found[a["id"]] += 1
    return [{"q": q, "found": found[q.id]} for q in rubric.written]
