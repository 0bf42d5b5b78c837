"""``index.html``: the class at a glance, linking every student's report."""
from __future__ import annotations

from pathlib import Path

import jinja2

from . import plots
from .results import percent


def _hist(values: list[float], xlabel: str, threshold: float | None = None,
          bins: int = 20, upper: float = 1.0, ylabel_integer: bool = True) -> str:
    from matplotlib.ticker import MaxNLocator

    plt = plots._setup()
    fig, ax = plt.subplots(figsize=(4.2, 2.4))
    ax.hist(values, bins=bins, range=(0, upper), color=plots.OKABE_ITO["blue"],
            edgecolor="white")
    if threshold is not None:
        ax.axvline(threshold, color=plots.OKABE_ITO["vermillion"], linestyle="--",
                   label=f"threshold {percent(threshold)}")
        ax.legend(fontsize=7, frameon=False)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("students")
    if ylabel_integer:
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    fig.tight_layout()
    return plots._svg(fig)


def write_overview(out: Path, rows, rubric, task_ids: list[str], notes: list[str]) -> Path:
    graded = [r for r in rows if r.status == "graded"]
    tasks = []
    for tid in task_ids:
        t = rubric.task(tid)
        accs = [r.tasks[tid][1] for r in graded if r.tasks.get(tid, (None, None))[1] is not None]
        passed = sum(r.tasks.get(tid, ("",))[0] in ("passed", "checked") for r in graded)
        tasks.append({"t": t, "passed": passed, "n": len(graded),
                      "hist": _hist(accs, f"{t.question} test accuracy", t.threshold)
                      if accs else None})
    quick = any(not r.graded for r in rows)
    scores = [r.points for r in graded if r.points is not None]
    top = max((r.max_points for r in rows if r.max_points is not None),
              default=rubric.max_points) or 1.0
    env = jinja2.Environment(loader=jinja2.PackageLoader("grader", "templates"),
                             autoescape=True, trim_blocks=True, lstrip_blocks=True)
    html = env.get_template("index.html.j2").render(
        rows=rows, tasks=tasks, task_ids=task_ids, rubric=rubric, notes=notes,
        link=lambda r: f"{r.folder}/report.html", quick=quick,
        score_hist=_hist(scores, "points", None, bins=max(1, min(20, int(top * 2))),
                         upper=top, ylabel_integer=True) if scores else None,
        max_points=top,
        attention=[r for r in rows if r.problem])
    path = Path(out) / "index.html"
    tmp = path.with_name(".index.html.tmp")
    tmp.write_text(html, encoding="utf-8")
    tmp.replace(path)
    return path
