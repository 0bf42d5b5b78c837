"""The ``grader`` command: parses arguments, calls the library, prints.

Exit codes:
  0  every graded task (and comparison) passed
  1  some task failed or errored: the submission's fault, reported
  2  a usage or input error: bad path, bad rubric, no data
  3  an internal error of the grader (a bug: the traceback is saved to a file, and one
     line says where)
  130 interrupted (Ctrl-C); finished work is kept

Every command runs inside one error boundary (``_boundary``): a user's mistake is one
line and a hint, never a traceback; a grader bug is one line and a saved traceback.
"""
from __future__ import annotations

import datetime as _dt
import functools
import os
import sys
import tempfile
import traceback
from pathlib import Path

import click
from rich.console import Console

from . import __version__
from .errors import GraderError, UsageError
from .formats import FORMATS

EXIT_PASSED, EXIT_FAILED, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 3


def _fail(console: Console, exc: GraderError) -> None:
    console.print(f"[bold red]error:[/bold red] {exc.message}", highlight=False)
    if exc.hint:
        console.print(f"[dim]hint:[/dim] {exc.hint}", highlight=False)
    sys.exit(exc.exit_code)


def save_traceback(folder: Path | None = None) -> Path:
    """The current exception's traceback in a file: in ``folder`` (the command's --out)
    when it can be written, else in the temporary folder."""
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    text = (f"grader {__version__}, python {sys.version.split()[0]}, argv: {sys.argv}\n\n"
            + traceback.format_exc())
    for where in ([Path(folder)] if folder else []) + [Path(tempfile.gettempdir())]:
        try:
            where.mkdir(parents=True, exist_ok=True)
            path = where / f"grader-crash-{stamp}-{os.getpid()}.txt"
            path.write_text(text)
            return path
        except OSError:
            continue
    raise RuntimeError("cannot write the traceback anywhere")  # pragma: no cover


def _boundary(interrupted: str = "finished work is kept."):
    """Every command's one error boundary: GraderError -> exit 2 (one line and a hint),
    Ctrl-C -> 130, any other exception (a grader bug) -> exit 3 with the traceback saved."""
    def wrap(fn):
        @functools.wraps(fn)
        def run(*args, **kwargs):
            err = Console(stderr=True)
            try:
                return fn(*args, **kwargs)
            except GraderError as exc:
                _fail(err, exc)
            except KeyboardInterrupt:
                err.print(f"[yellow]interrupted[/yellow]: {interrupted}", highlight=False)
                sys.exit(130)
            except Exception as exc:  # a bug in the grader, not the user's or student's fault
                out = kwargs.get("out")
                path = save_traceback(Path(out) if out else None)
                err.print(f"[bold red]internal error:[/bold red] {type(exc).__name__}: {exc}. "
                          f"This is a bug in grader; the traceback is in {path}: please "
                          f"report it with that file.", highlight=False)
                sys.exit(EXIT_INTERNAL)
        return run
    return wrap


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="grader")
def main() -> None:
    """Train a student's Keras models under the lab's budget and grade them."""


@main.command()
@click.argument("submission", type=click.Path(path_type=Path))
@click.option("--data", type=click.Path(path_type=Path), default=None,
              help="CIFAR-10: a cifar-10-batches-py folder, cifar-10-python.tar.gz or an .npz. "
                   "Default: $GRADER_CIFAR10, else the keras cache, else a download.")
@click.option("--tasks", default=None, help="Comma-separated task ids, e.g. fc,cnn. Default: all.")
@click.option("--rubric", type=click.Path(path_type=Path), default=None,
              help="A rubric .toml. Default: the bundled CIFAR-10 lab rubric.")
@click.option("--seed", type=click.IntRange(min=0), default=None,
              help="Seed for weights and data order. Default: the rubric's.")
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Folder for results.json (written after every task).")
@click.option("--quick", is_flag=True,
              help="Smoke check: build, structure checks, one short epoch on a subset; "
                   "no accuracy verdict.")
@click.option("--steps-per-execution", type=click.IntRange(min=1), default=None,
              help="Batches per backend call: same maths, less overhead.")
@click.option("--timeout", "task_timeout", type=click.FloatRange(min=1), default=None,
              help="Seconds per task, overriding the rubric's timeout_s.")
@click.option("--submission-timeout", type=click.FloatRange(min=1), default=None,
              help="Seconds for the whole submission, overriding the rubric; tasks not "
                   "started by then fail with that reason.")
@click.option("--memory-limit", type=click.IntRange(min=256), default=None,
              help="MiB of memory for the process running the submission (rubric default).")
@click.option("--resume", is_flag=True,
              help="Keep the tasks already in --out/results.json from the same submission, "
                   "rubric, seed and data; grade the rest.")
@click.option("--format", "formats", type=click.Choice(FORMATS), multiple=True,
              help="Also write gradescope.json / junit.xml in --out, or GitHub annotations "
                   "(automatic when GITHUB_ACTIONS is set).")
@click.option("--seeds", "n_seeds", type=click.IntRange(min=1), default=1, show_default=True,
              help="Train every task this many times (seed, seed+1, ...); judge the mean.")
@click.option("--sandbox", type=click.Choice(["auto", "bubblewrap", "landlock", "none"]),
              default="auto", show_default=True,
              help="How student code is confined: the best available (auto), or one asked "
                   "for; `grader doctor` says what this machine allows.")
@click.option("--mixed-precision", type=click.Choice(["float16", "bfloat16"]), default=None,
              help="Build and train under keras's mixed_float16 / mixed_bfloat16 policy: "
                   "faster on most GPUs, slower on CPUs without bf16 units; it changes the "
                   "numbers, so it is recorded and not compared with the float32 reference.")
@_boundary("results of finished tasks are in --out, if given.")
def check(submission, data, tasks, rubric, seed, out, quick, steps_per_execution,
          task_timeout, submission_timeout, memory_limit, resume, formats, n_seeds,
          sandbox, mixed_precision) -> None:
    """Grade one SUBMISSION (.py) and print a verdict per task."""
    from .console import RichReporter, output_console, print_summary
    from .grading import DEFAULT_STEPS_PER_EXECUTION, check as run_check

    err = output_console(stderr=True)
    if out is None and set(formats) - {"github"}:
        # Refused before any work: not after hours of training.
        raise UsageError(f"--format {'/'.join(sorted(set(formats) - {'github'}))} writes files: "
                         f"it needs --out DIR.", hint="Add --out DIR.")
    results = run_check(submission, data=data, rubric=rubric, tasks=tasks, seed=seed,
                        quick=quick, out=out, reporter=RichReporter(err),
                        steps_per_execution=steps_per_execution or DEFAULT_STEPS_PER_EXECUTION,
                        task_timeout_s=task_timeout, memory_mb=memory_limit,
                        resume=resume, seeds=n_seeds,
                        submission_timeout_s=submission_timeout, sandbox=sandbox,
                        mixed_precision=mixed_precision and f"mixed_{mixed_precision}")
    print_summary(results, output_console())
    if out is not None:
        from .report import REPORT_FILE, write_report
        write_report(results, Path(out) / REPORT_FILE)
        err.print(f"results: {Path(out) / 'results.json'}; report: {Path(out) / REPORT_FILE}")
    from .formats import write_formats
    write_formats(results, Path(out) if out else Path("."), formats)
    sys.exit(EXIT_PASSED if results.passed else EXIT_FAILED)


@main.command()
@click.argument("submissions", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(path_type=Path), required=True,
              help="Folder for every student's results and report, grades.csv and index.html.")
@click.option("--jobs", type=click.IntRange(min=1), default=None,
              help="Submissions graded at once. Default: one per GPU; on a CPU one per 4 cores, "
                   "or one per core (up to 4) with --quick.")
@click.option("--data", type=click.Path(path_type=Path), default=None, help="As for check.")
@click.option("--tasks", default=None, help="Comma-separated task ids. Default: all.")
@click.option("--rubric", type=click.Path(path_type=Path), default=None)
@click.option("--seed", type=click.IntRange(min=0), default=None)
@click.option("--quick", is_flag=True, help="The quick check for every submission.")
@click.option("--timeout", "task_timeout", type=click.FloatRange(min=1), default=None,
              help="Seconds per task, overriding the rubric.")
@click.option("--format", "formats", type=click.Choice(FORMATS), multiple=True,
              help="Also write each student's gradescope.json, and OUT/junit.xml.")
@click.option("--sandbox", type=click.Choice(["auto", "bubblewrap", "landlock", "none"]),
              default="auto", show_default=True, help="As for check.")
@click.option("--allow-unsandboxed", is_flag=True,
              help="Grade the class even where no sandbox can run (only for code you trust).")
@_boundary("run the same command again to finish; finished work is kept.")
def grade(submissions, out, jobs, data, tasks, rubric, seed, quick, task_timeout,
          formats, sandbox, allow_unsandboxed) -> None:
    """Grade a class: files, folders of files, or one folder per student.

    Resumable: run the same command again after an interruption and only what
    is missing is graded. Exit code 0 when every submission passed, else 1.
    """
    from .batch import grade_batch
    from .console import RichBatchReporter, output_console

    err = output_console(stderr=True)
    rows = grade_batch(submissions, out, jobs=jobs, data=data, rubric=rubric, seed=seed,
                       quick=quick, tasks=tasks, formats=formats,
                       reporter=RichBatchReporter(err), task_timeout_s=task_timeout,
                       sandbox=sandbox, allow_unsandboxed=allow_unsandboxed)
    look = [r for r in rows if r.problem]
    verdict = "passed" if not quick else "passed the quick check (not a grade)"
    err.print(f"{sum(r.passed for r in rows)} of {len(rows)} {verdict}; grades: "
              f"{Path(out) / 'grades.csv'}; overview: {Path(out) / 'index.html'}",
              highlight=False)
    if look:
        err.print(f"[yellow]{len(look)} to look at[/yellow] (not the models' fault):")
        for r in look:
            err.print(f"  {r.student}: {r.problem} ({r.path})", highlight=False)
    sys.exit(EXIT_PASSED if all(r.passed for r in rows) else EXIT_FAILED)


@main.command()
@click.option("--data", type=click.Path(path_type=Path), default=None, help="As for check.")
@click.option("--sandbox", type=click.Choice(["auto", "bubblewrap", "landlock", "none"]),
              default="auto", show_default=True, help="The sandbox to try.")
@click.option("--json", "as_json", is_flag=True, help="Print the diagnosis as JSON.")
@_boundary()
def doctor(data, sandbox, as_json) -> None:
    """What protects this machine, and whether a check can run here (exit 0 when ready)."""
    import json

    from .doctor import diagnose

    d = diagnose(data, sandbox)
    if as_json:
        click.echo(json.dumps(d.to_dict(), indent=2))
    else:
        out = Console()
        for item in d.items:
            mark = "[green]ok[/green]  " if item.ok else "[red]NO[/red]  "
            out.print(f"{mark}{item.name:<8} {item.detail}", highlight=False)
        out.print("ready: a check can run here" if d.ready else
                  "not ready: see the lines marked NO", highlight=False)
    sys.exit(EXIT_PASSED if d.ready else EXIT_FAILED)


@main.command("gradescope-bundle")
@click.option("-o", "--output", type=click.Path(path_type=Path),
              default=Path("autograder.zip"), show_default=True)
@click.option("--rubric", type=click.Path(path_type=Path), default=None)
@click.option("--data-url", default=None,
              help="Where setup.sh downloads CIFAR-10 (the .npz or tar.gz) on Gradescope; "
                   "default: keras' own download.")
@click.option("--quick", is_flag=True, help="Grade with the quick check (no accuracy verdict).")
@_boundary()
def gradescope_bundle(output, rubric, data_url, quick) -> None:
    """Write the Gradescope autograder zip (setup.sh, run_autograder, the rubric)."""
    from .gradescope import write_bundle
    from .rubric import load_rubric

    err = Console(stderr=True)
    written = write_bundle(output, load_rubric(rubric), data_url=data_url, quick=quick)
    err.print(f"wrote {written}: upload it as the autograder of a Gradescope programming "
              f"assignment", highlight=False)


@main.command()
@click.argument("results_file", type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(path_type=Path), default=None,
              help="Where to write the HTML. Default: report.html beside RESULTS_FILE.")
@_boundary()
def report(results_file, output) -> None:
    """Re-render report.html from a results.json, without retraining."""
    from .report import REPORT_FILE, write_report

    err = Console(stderr=True)
    written = write_report(results_file, output or Path(results_file).parent / REPORT_FILE)
    err.print(f"wrote {written}", highlight=False)


@main.command()
@click.option("--submission", type=click.Path(path_type=Path),
              default=Path("reference/cifar10_lab.py"), show_default=True,
              help="The reference solutions, written to the submission contract.")
@click.option("--seeds", default="0,1,2", show_default=True, help="Comma-separated seeds.")
@click.option("--data", type=click.Path(path_type=Path), default=None, help="As for check.")
@click.option("--tasks", default=None, help="Comma-separated task ids. Default: all.")
@click.option("--rubric", type=click.Path(path_type=Path), default=None)
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Reference file to write. Default: reference/results/<dataset>.json.")
@click.option("--from", "from_files", type=click.Path(path_type=Path, exists=True), multiple=True,
              help="Aggregate these existing results.json files instead of training.")
@_boundary()
def reference(submission, seeds, data, tasks, rubric, out, from_files) -> None:
    """Measure the reference solutions over several seeds and write the reference file."""
    from .console import RichReporter, output_console
    from .grading import check as run_check
    from .reference import aggregate, default_path, save_reference
    from .results import load_results
    from .rubric import load_rubric

    err = output_console(stderr=True)
    command = " ".join(["grader"] + sys.argv[1:])
    r = load_rubric(rubric)
    if from_files:
        runs = [load_results(p) for p in from_files]
    else:
        try:
            seed_list = [int(s) for s in seeds.split(",") if s.strip()]
        except ValueError:
            raise UsageError(f"--seeds takes integers like 0,1,2. Received: {seeds!r}") from None
        runs = []
        for seed in seed_list:
            runs.append(run_check(submission, data=data, rubric=r, tasks=tasks, seed=seed,
                                  out=(out or default_path(r)).parent / f"seed{seed}",
                                  reporter=RichReporter(err)))
    target = out or default_path(r)
    ref = aggregate(runs, command, order=r.task_ids)
    save_reference(ref, target)
    from .reference import markdown_table
    click.echo(markdown_table(ref))
    err.print(f"wrote {target}", highlight=False)


@main.command()
@click.argument("path", type=click.Path(path_type=Path), default=Path("lab.py"))
@click.option("--rubric", type=click.Path(path_type=Path), default=None,
              help="A rubric .toml. Default: the bundled CIFAR-10 lab rubric.")
@click.option("--force", is_flag=True, help="Overwrite PATH if it exists.")
@_boundary()
def init(path, rubric, force) -> None:
    """Write a starter submission (PATH: lab.py or lab.ipynb) for the rubric."""
    from .rubric import load_rubric
    from .starter import write_starter

    err = Console(stderr=True)
    written = write_starter(path, load_rubric(rubric), force=force)
    err.print(f"wrote {written}: fill in each function, then run "
              f"`grader check {written.name} --quick`", highlight=False)


if __name__ == "__main__":
    main()
