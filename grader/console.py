"""Terminal output: a live progress display while training, then a summary table.

On a terminal rich draws a live bar; in a notebook it renders as HTML; piped to
a log (CI) it prints one plain line per finished epoch and task instead.
"""
from __future__ import annotations

import math

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from .plain_text import for_terminal
from .progress import BatchProgress, GradeProgress
from .results import CHECKED, ERROR, FAILED, HELD, PASSED, SKIPPED, Results, percent

STYLE = {PASSED: "green", FAILED: "red", ERROR: "red", SKIPPED: "dim", CHECKED: "cyan",
         HELD: "magenta"}


class RichProgress(GradeProgress):
    def __init__(self, console: Console | None = None):
        self.console = console or Console(stderr=True)
        self.live = self.console.is_terminal or self.console.is_jupyter
        self.progress: Progress | None = None
        # One bar per task in progress: a quick check runs tasks in two children at once.
        self.bars: dict[str, object] = {}

    def start(self, results, tasks) -> None:
        if results.graded:
            self.console.print(f"[bold]Grading[/bold] {for_terminal(results.submission['name'])} "
                               f"(seed {results.seed}, {len(tasks)} task(s))")
        else:
            self.console.print(f"[bold]Quick check[/bold] of "
                               f"{for_terminal(results.submission['name'])} "
                               f"({len(tasks)} task(s)): a pre-check, [bold]not a grade[/bold]")
        if self.live:
            self.progress = Progress(TextColumn("{task.description}"), BarColumn(),
                                     TextColumn("{task.fields[status]}"), TimeElapsedColumn(),
                                     console=self.console, transient=True)
            self.progress.start()

    def task_started(self, task, epochs: int) -> None:
        if self.progress is not None:
            if task.id in self.bars:  # a further seed of the same task
                self.progress.remove_task(self.bars.pop(task.id))
            self.bars[task.id] = self.progress.add_task(
                f"{task.question} {task.id}", total=max(epochs, 1),
                status="building" if epochs else "building only")

    def event(self, msg: dict) -> None:
        # Progress comes from the child, where student code runs: numbers are taken only
        # when they are numbers, and nothing of it is read as markup.
        def number(key, source=msg):
            v = source.get(key) if isinstance(source, dict) else None
            return v if isinstance(v, (int, float)) and not isinstance(v, bool) and \
                math.isfinite(v) else None

        ev, logs = msg.get("ev"), msg.get("logs")
        epoch, epochs = number("epoch"), number("epochs")
        acc = number("val_accuracy", logs)
        name = "val_acc" if acc is not None else "acc"
        acc = acc if acc is not None else number("accuracy", logs)
        if epoch is None:
            return
        status = f"epoch {epoch:g}/{epochs if epochs is not None else '?'}" + (
            f"  {name} {acc:.3f}" if acc is not None else "")
        bar = self.bars.get(msg.get("task")) if isinstance(msg.get("task"), str) else None
        if self.progress is not None and bar is not None:
            batch, steps = number("batch"), number("steps")
            if ev == "batch" and batch is not None and steps:
                self.progress.update(bar, completed=epoch - 1 + batch / steps, status=status)
            elif ev == "epoch":
                self.progress.update(bar, completed=epoch, status=status)
        elif ev == "epoch":
            self.console.print(f"  {for_terminal(msg.get('task'))}: {status}", highlight=False)

    def task_finished(self, result) -> None:
        if self.progress is not None and result.id in self.bars:
            self.progress.remove_task(self.bars.pop(result.id))
        style = STYLE.get(result.status, "")
        self.console.print(f"  [{style}]{result.status:>7}[/{style}] {result.question} "
                           f"{result.id}: {for_terminal(result.reason)}", highlight=False)

    def finish(self, results) -> None:
        if self.progress is not None:
            self.progress.stop()


def summary_table(results: Results) -> Table:
    if not results.graded:
        ok = sum(t.status == CHECKED for t in results.tasks)
        title = (f"{for_terminal(results.submission['name'])}: QUICK CHECK, NOT A GRADE: {ok} of "
                 f"{len(results.tasks)} task(s) build, pass the structure checks and train "
                 f"(no accuracy, no points)")
    else:
        title = (f"{for_terminal(results.submission['name'])}: {results.points:g} / "
                 f"{results.max_points:g} points")
    table = Table(title=title)
    for col, kw in (("Q", {}), ("task", {"no_wrap": True}), ("verdict", {}),
                    ("test acc", {"justify": "right"}),
                    ("threshold", {"justify": "right"}), ("vs ref", {"justify": "right"}),
                    ("params", {"justify": "right"}),
                    ("epochs", {"justify": "right"}), ("batch", {"justify": "right"}),
                    ("time", {"justify": "right"}), ("points", {"justify": "right"})):
        table.add_column(col, **kw)
    for t in results.tasks:
        style = STYLE.get(t.status, "")
        train_s = t.timings.get("train_s")
        table.add_row(t.question, t.id, f"[{style}]{t.status}[/{style}]",
                      f"{t.test_accuracy:.2%}" if t.test_accuracy is not None else "-",
                      percent(t.threshold),
                      _vs_reference(t),
                      f"{t.params_total:,}" if t.params_total is not None else "-",
                      str(t.epochs_run if t.epochs_run is not None else t.epochs or "-"),
                      str(t.batch_size or "-"),
                      f"{train_s:.0f} s" if train_s is not None else "-",
                      _points(results, t))
    for c in results.comparisons:
        style = STYLE.get(c.status, "")
        table.add_row(c.question, c.id, f"[{style}]{c.status}[/{style}]", "", "", "", "", "", "",
                      "", _points(results, c))
    return table


def _points(results: Results, item) -> str:
    return f"{item.points:g}/{item.max_points:g}" if results.graded else "not graded"


def _vs_reference(t) -> str:
    """'-1.9 pt' against the reference's mean test accuracy, with the parameter ratio."""
    ref = t.reference or {}
    if not ref.get("comparable") or "accuracy_diff_points" not in ref:
        return "-"
    text = f"{ref['accuracy_diff_points']:+.1f} pt"
    if ref.get("params_ratio"):
        text += f", {ref['params_ratio']:.1f}x params"
    return text


def estimate_line(est: dict) -> str:
    """'A full grade here would take about 42 min (fc 3 min, ...)' for a quick run."""
    from .estimate import say

    parts = ", ".join(f"{tid} {say(s)}" for tid, s in est["tasks"].items())
    where = "on this machine's CPU" if est.get("device") != "gpu" else "on this GPU"
    about = "at most about" if est.get("upper_bound") else "about"
    line = (f"A full grade here would take {about} {say(est['full_grade_s'])} {where} "
            f"({parts}; estimated from this quick check)")
    if est.get("device") != "gpu":
        line += "; on a GPU, minutes"
    return line + "."


def output_console(stderr: bool = False) -> Console:
    """A console; piped to a log it is wide enough that the table does not wrap."""
    console = Console(stderr=stderr)
    if not console.is_terminal and not console.is_jupyter:
        console = Console(stderr=stderr, width=max(console.width, 120))
    return console


def print_summary(results: Results, console: Console) -> None:
    # Messages quote student code and error text: "[3]" or "[/b]" are not rich markup, and
    # a terminal escape in them is shown, not obeyed.
    esc = for_terminal
    console.print(summary_table(results))
    for note in results.notes:
        loud = note.check in ("device", "sandbox")  # the run itself is not what it should be
        console.print(f"[bold red]WARNING:[/bold red] {esc(note.message)}" if loud else
                      f"[yellow]note:[/yellow] {esc(note.message)}", highlight=False)
    for t in results.tasks:
        for f in t.findings:
            if not f.ok:
                colour = "red" if f.severity == "error" else "yellow"
                console.print(f"[{colour}]{t.id}:[/{colour}] {esc(f.message)}", highlight=False)
        if t.status == ERROR:
            console.print(f"[red]{t.id}:[/red] {esc(t.reason)}", highlight=False)
            for fr in (t.error or {}).get("frames", []):
                console.print(f"    line {fr['line']} in {esc(str(fr['function']))}: "
                              f"{esc(str(fr['code']))}",
                              highlight=False)
    for c in results.comparisons:
        if c.status != PASSED:
            console.print(f"[red]{c.id}:[/red] {esc(c.reason)}", highlight=False)
    if results.estimate:
        console.print(estimate_line(results.estimate), highlight=False)
    for t in results.tasks:
        ref = t.reference or {}
        if ref.get("comparable") and t.test_accuracy is not None:
            time_ratio = ref.get("train_time_ratio")
            console.print(
                f"[dim]{t.id} vs reference:[/dim] {t.test_accuracy:.2%} vs "
                f"{ref['test_accuracy_mean']:.2%} (mean of {ref['n']} seed(s)), "
                f"{t.params_total or 0:,} vs {ref['params_total']:,} parameters, "
                f"{t.epochs_run} vs {ref['epochs']} epochs"
                + (f", {time_ratio:.1f}x the reference's training time" if time_ratio else "")
                + (f" ({esc(ref['caveat'])})" if ref.get("caveat") else ""),
                highlight=False)
        elif ref and not ref.get("comparable"):
            console.print(f"[dim]{t.id}: not compared with the reference: {esc(ref['why'])}[/dim]",
                          highlight=False)
            break


class RichBatchProgress(BatchProgress):
    """Submissions done, running and failed, elapsed time and an ETA; plain lines in a log."""

    def __init__(self, console: Console):
        from rich.progress import MofNCompleteColumn, TimeRemainingColumn

        self.console = console
        self.live = console.is_terminal or console.is_jupyter
        self.running: list[str] = []
        self.failed = 0
        self.progress = Progress(TextColumn("[bold]grading"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("{task.fields[status]}"), TimeElapsedColumn(),
                                 TextColumn("ETA"), TimeRemainingColumn(), console=console,
                                 transient=False) if self.live else None
        self.bar = None

    def _status(self) -> str:
        run = ", ".join(self.running[:3]) + (" ..." if len(self.running) > 3 else "")
        return f"failed {self.failed} · running: {run or '-'}"

    def start(self, total: int, cached: int) -> None:
        self.console.print(f"{total} submission(s); {cached} already graded (cached), "
                           f"{total - cached} to grade", highlight=False)
        if self.progress is not None:
            self.progress.start()
            self.bar = self.progress.add_task("grade", total=total, completed=cached,
                                              status=self._status())

    def started(self, entry) -> None:
        self.running.append(entry.student)
        if self.progress is not None:
            self.progress.update(self.bar, status=self._status())

    def finished(self, entry, row) -> None:
        if entry.student in self.running:
            self.running.remove(entry.student)
        if not row.passed:
            self.failed += 1
        text = (f"{for_terminal(row.student)}: " + (f"{row.points:g}/{row.max_points:g}"
                                              if row.graded else f"quick check: {row.verdict}") +
                (f" ({for_terminal(row.problem)})" if row.problem else "") + f" in {row.seconds:.0f} s")
        if self.progress is not None:
            self.progress.update(self.bar, advance=1, status=self._status())
            self.progress.console.print("  " + text, highlight=False)
        else:
            self.console.print(text, highlight=False)

    def finish(self, rows) -> None:
        if self.progress is not None:
            self.progress.stop()
