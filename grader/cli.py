"""The ``grader`` command: parses arguments, calls the library, prints.

Exit codes:
  0  every graded task (and comparison) passed
  1  some task failed or errored: the submission's fault, reported
  2  a usage or input error: bad path, bad rubric, no data
  3  an internal error of the grader (a bug: the traceback is saved to a file, and one
     line says where)
  130 interrupted (Ctrl-C, or SIGTERM as a scheduler or `kill` sends it); finished work
      is kept, the run's temporary folders are removed

Every command runs inside one error boundary (``_boundary``): a user's mistake is one
line and a hint, never a traceback; a grader bug is one line and a saved traceback.
"""
from __future__ import annotations

import datetime as _dt
import functools
import os
import signal
import sys
import tempfile
import threading
import traceback
from pathlib import Path

import click
from rich.console import Console

from . import __version__
from .errors import GraderError, UsageError
from .formats import FORMATS
from .plain_text import for_terminal
from .options import DEFAULT_STEPS_PER_EXECUTION, MIXED_PRECISION, SANDBOXES, GradeOptions

EXIT_PASSED, EXIT_FAILED, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 3


def _fail(console: Console, exc: GraderError) -> None:
    console.print(f"[bold red]error:[/bold red] {for_terminal(exc.message)}", highlight=False)
    if exc.hint:
        console.print(f"[dim]hint:[/dim] {for_terminal(exc.hint)}", highlight=False)
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


def _terminated(signum, frame):
    # Python's default for SIGTERM ends the process where it stands: no finally block
    # runs, and a run's temporary folder (with its copy of the data, 177 MB for CIFAR-10)
    # stays behind.  Unwinding as Ctrl-C does removes it and keeps finished work.
    raise KeyboardInterrupt


def _boundary(interrupted: str = "finished work is kept."):
    """Every command's one error boundary: GraderError -> exit 2 (one line and a hint),
    Ctrl-C or SIGTERM -> 130, any other exception (a grader bug) -> exit 3 with the
    traceback saved."""
    def wrap(fn):
        @functools.wraps(fn)
        def run(*args, **kwargs):
            err = Console(stderr=True)
            previous = None
            if threading.current_thread() is threading.main_thread():
                previous = signal.signal(signal.SIGTERM, _terminated)
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
                err.print(f"[bold red]internal error:[/bold red] {type(exc).__name__}: "
                          f"{for_terminal(str(exc))}. This is a bug in grader; the traceback "
                          f"is in {path}: please report it with that file.", highlight=False)
                sys.exit(EXIT_INTERNAL)
            finally:
                if previous is not None:
                    signal.signal(signal.SIGTERM, previous)
        return run
    return wrap


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="grader")
def main() -> None:
    """Train a student's Keras models under the lab's budget and grade them."""


def grading_options(fn):
    """The options that say how to grade, declared once for ``check`` and ``grade``; the
    command receives them as one ``GradeOptions`` named ``options``."""
    decorators = [
        click.option("--tasks", default=None,
                     help="Comma-separated task ids, e.g. fc,cnn. Default: all."),
        click.option("--seed", type=click.IntRange(min=0), default=None,
                     help="Seed for weights and data order. Default: the rubric's."),
        click.option("--seeds", type=click.IntRange(min=1), default=1, show_default=True,
                     help="Train every task this many times (seed, seed+1, ...); judge the "
                          "mean."),
        click.option("--quick", is_flag=True,
                     help="Smoke check: build, structure checks, one short epoch on a subset; "
                          "no accuracy verdict, not a grade."),
        click.option("--timeout", "task_timeout_s", type=click.FloatRange(min=1), default=None,
                     help="Seconds per task, overriding the rubric's timeout_s."),
        click.option("--submission-timeout", "submission_timeout_s",
                     type=click.FloatRange(min=1), default=None,
                     help="Seconds for a whole submission, overriding the rubric; tasks not "
                          "started by then fail with that reason."),
        click.option("--memory-limit", "memory_mb", type=click.IntRange(min=256), default=None,
                     help="MiB of memory for the process running a submission (rubric "
                          "default)."),
        click.option("--steps-per-execution", type=click.IntRange(min=1),
                     default=DEFAULT_STEPS_PER_EXECUTION, show_default=True,
                     help="Batches per backend call: same maths, less overhead."),
        click.option("--mixed-precision", type=click.Choice(MIXED_PRECISION), default=None,
                     help="Build and train under this keras dtype policy: faster on most "
                          "GPUs, slower on CPUs without bf16 units; it changes the numbers, "
                          "so it is recorded and not compared with the float32 reference."),
        click.option("--sandbox", type=click.Choice(SANDBOXES), default="auto",
                     show_default=True,
                     help="How student code is confined: the best available (auto), or one "
                          "asked for; `grader doctor` says what this machine allows."),
    ]
    names = ("tasks", "seed", "seeds", "quick", "task_timeout_s", "submission_timeout_s",
             "memory_mb", "steps_per_execution", "mixed_precision", "sandbox")

    @functools.wraps(fn)
    def run(*args, **kwargs):
        kwargs["options"] = GradeOptions(**{n: kwargs.pop(n) for n in names})
        return fn(*args, **kwargs)

    for decorate in reversed(decorators):
        run = decorate(run)
    return run


@main.command()
@click.argument("submission", type=click.Path(path_type=Path))
@click.option("--data", type=click.Path(path_type=Path), default=None,
              help="CIFAR-10: a cifar-10-batches-py folder, cifar-10-python.tar.gz or an .npz. "
                   "Default: $GRADER_CIFAR10, else the keras cache, else a download.")
@click.option("--rubric", type=click.Path(path_type=Path), default=None,
              help="A rubric .toml. Default: the bundled CIFAR-10 lab rubric.")
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Folder for results.json (written after every task).")
@click.option("--resume", is_flag=True,
              help="Keep the tasks already in --out/results.json from the same job "
                   "(submission, rubric, data, seed, mode, limits); grade the rest.")
@click.option("--format", "formats", type=click.Choice(FORMATS), multiple=True,
              help="Also write gradescope.json / junit.xml in --out, or GitHub annotations "
                   "(automatic when GITHUB_ACTIONS is set).")
@click.option("--lanes", type=click.IntRange(min=1), default=None,
              help="Children grading tasks side by side. Default: 2 for --quick on a machine "
                   "with 2+ cores (a quick check is mostly one-core graph building), else 1.")
@grading_options
@_boundary("results of finished tasks are in --out, if given.")
def check(submission, data, rubric, out, resume, formats, lanes, options) -> None:
    """Grade one SUBMISSION (.py, .ipynb, or a student's folder) and print a verdict per task."""
    from .console import RichProgress, output_console, print_summary
    from .grading import check as run_check

    err = output_console(stderr=True)
    if out is None and set(formats) - {"github"}:
        # Refused before any work: not after hours of training.
        raise UsageError(f"--format {'/'.join(sorted(set(formats) - {'github'}))} writes files: "
                         f"it needs --out DIR.", hint="Add --out DIR.")
    results = run_check(submission, options, data=data, rubric=rubric, out=out,
                        progress=RichProgress(err), resume=resume, lanes=lanes)
    print_summary(results, output_console())
    if out is not None:
        from .html_report import REPORT_FILE, write_report
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
@click.option("--rubric", type=click.Path(path_type=Path), default=None)
@click.option("--format", "formats", type=click.Choice(FORMATS), multiple=True,
              help="Also write each student's gradescope.json, and OUT/junit.xml.")
@click.option("--allow-unsandboxed", is_flag=True,
              help="Grade the class even where no sandbox can run (only for code you trust).")
@click.option("--executor", type=click.Choice(["local", "ray"]), default="local",
              show_default=True,
              help="Where submissions are graded: this machine, or a Ray cluster (one "
                   "submission per Ray task).")
@click.option("--ray-address", default=None, metavar="HOST:PORT",
              help="The Ray head to connect to (ray start --head). Default: start a local "
                   "Ray instance.")
@click.option("--gpus-per-task", type=click.FloatRange(min=0), default=0.0, show_default=True,
              help="GPUs each submission asks Ray for (1 on a GPU cluster).")
@click.option("--cpus-per-task", type=click.FloatRange(min=0.01), default=1.0,
              show_default=True, help="CPUs each submission asks Ray for.")
@click.option("--max-retries", type=click.IntRange(min=0), default=3, show_default=True,
              help="Times a submission lost with its node is re-run elsewhere (a student's "
                   "error is never retried).")
@click.option("--data-dir", type=click.Path(path_type=Path), default=None,
              help="With --executor ray: a dataset path every node has (checked by "
                   "fingerprint); default: the driver's data, sent once per node.")
@grading_options
@_boundary("run the same command again to finish; finished work is kept.")
def grade(submissions, out, jobs, data, rubric, formats, allow_unsandboxed, executor,
          ray_address, gpus_per_task, cpus_per_task, max_retries, data_dir, options) -> None:
    """Grade a class: files, folders of files, or one folder per student.

    Resumable: run the same command again after an interruption and only what
    is missing is graded. Exit code 0 when every submission passed, else 1.
    """
    from .batch import grade_batch
    from .console import RichBatchProgress, output_console

    err = output_console(stderr=True)
    ray_options = None
    if executor == "ray":
        from .cluster import RayOptions
        ray_options = RayOptions(address=ray_address, gpus_per_task=gpus_per_task,
                                 cpus_per_task=cpus_per_task, max_retries=max_retries,
                                 data_dir=str(data_dir) if data_dir else None,
                                 allow_unsandboxed=allow_unsandboxed)
    elif ray_address or data_dir:
        raise UsageError("--ray-address and --data-dir need --executor ray.",
                         hint="Add --executor ray, or leave them out.")
    rows = grade_batch(submissions, out, options, jobs=jobs, data=data, rubric=rubric,
                       formats=formats, progress=RichBatchProgress(err),
                       allow_unsandboxed=allow_unsandboxed, executor=executor,
                       ray_options=ray_options)
    look = [r for r in rows if r.problem]
    verdict = "passed" if not options.quick else "passed the quick check (not a grade)"
    err.print(f"{sum(r.passed for r in rows)} of {len(rows)} {verdict}; grades: "
              f"{Path(out) / 'grades.csv'}; overview: {Path(out) / 'index.html'}",
              highlight=False)
    if look:
        err.print(f"[yellow]{len(look)} to look at[/yellow] (not the models' fault):")
        for r in look:
            err.print(f"  {for_terminal(r.student)}: {for_terminal(r.problem)} "
                      f"({for_terminal(r.path)})",
                      highlight=False)
    sys.exit(EXIT_PASSED if all(r.passed for r in rows) else EXIT_FAILED)


@main.command()
@click.option("--data", type=click.Path(path_type=Path), default=None, help="As for check.")
@click.option("--sandbox", type=click.Choice(SANDBOXES), default="auto", show_default=True,
              help="The sandbox to try.")
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
    from .html_report import REPORT_FILE, write_report

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
@click.option("--keep", "keep_file", type=click.Path(path_type=Path, exists=True,
                                                      dir_okay=False), default=None,
              help="An existing reference file: its tasks that the new runs do not measure "
                   "are carried over whole (re-measure one model, keep the others).")
@_boundary()
def reference(submission, seeds, data, tasks, rubric, out, from_files, keep_file) -> None:
    """Measure the reference solutions over several seeds and write the reference file."""
    from .console import RichProgress, output_console
    from .grading import check as run_check
    from .reference import aggregate, default_path, load_reference, save_reference
    from .results import load_results
    from .rubric import load_rubric

    err = output_console(stderr=True)
    command = " ".join(["grader"] + sys.argv[1:])
    r = load_rubric(rubric)
    keep = load_reference(keep_file) if keep_file is not None else None
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
                                  progress=RichProgress(err)))
    target = out or default_path(r)
    ref = aggregate(runs, command, order=r.task_ids, keep=keep)
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


@main.command()
@click.argument("out", type=click.Path(path_type=Path, file_okay=False))
@click.option("--rubric", type=click.Path(path_type=Path), default=None,
              help="The rubric the class was graded with. Default: the bundled one.")
@click.option("--port", type=click.IntRange(0, 65535), default=0, show_default=True,
              help="Port on 127.0.0.1 (0: a free one).")
@click.option("--no-browser", is_flag=True, help="Print the address only.")
@_boundary("every decision made is saved in OUT/desk.sqlite.")
def review(out, rubric, port, no_browser) -> None:
    """The TA's desk for a class graded into OUT: grade the written questions and decide
    the held tasks in the browser.  Decisions are saved the moment they are made."""
    import time
    import webbrowser

    from .classroom import load_class
    from .desk import DeskServer
    from .rubric import load_rubric

    load_class(out)  # refused at once when OUT is no graded class
    server = DeskServer(out, load_rubric(rubric), port=port).start()
    click.echo(f"The desk for {out}: {server.url}", err=True)
    click.echo("Only this machine can reach it, with the token in the address. Ctrl-C stops "
               "it; every decision is already saved.", err=True)
    if not no_browser:
        webbrowser.open(server.url)
    try:
        while server.thread.is_alive():
            time.sleep(0.5)
    finally:
        server.stop()


@main.command()
@click.argument("out", type=click.Path(path_type=Path, file_okay=False))
@click.option("--rubric", type=click.Path(path_type=Path), default=None,
              help="The rubric the class was graded with. Default: the bundled one.")
@_boundary()
def release(out, rubric) -> None:
    """Write the desk's decisions into every student's results.json and report.html."""
    from .release import release as run_release
    from .rubric import load_rubric

    done = run_release(out, load_rubric(rubric))
    Console(stderr=True).print(f"released to {len(done)} student(s)", highlight=False)


@main.command()
@click.argument("out", type=click.Path(path_type=Path, file_okay=False))
@click.option("--lms", type=click.Choice(("canvas", "moodle")), required=True,
              help="Which LMS's gradebook file --template is.")
@click.option("--template", type=click.Path(path_type=Path, dir_okay=False), required=True,
              help="Canvas: the gradebook export. Moodle: the grading worksheet.")
@click.option("--assignment", default=None,
              help="Canvas: (part of) the header of the assignment's column.")
@click.option("-o", "--output", type=click.Path(path_type=Path), default=None,
              help="Default: OUT/gradebook-<lms>.csv.")
@click.option("--rubric", type=click.Path(path_type=Path), default=None,
              help="The rubric the class was graded with. Default: the bundled one.")
@_boundary()
def gradebook(out, lms, template, assignment, output, rubric) -> None:
    """Fill the LMS's own gradebook file with each student's points (the machine's, held
    tasks accepted, written questions graded), ready to import back."""
    from .classroom import load_class
    from .gradebook import fill
    from .rubric import load_rubric

    target = output or Path(out) / f"gradebook-{lms}.csv"
    done = fill(lms, load_class(out), load_rubric(rubric), template, target, assignment)
    err = Console(stderr=True)
    err.print(f"wrote {target}: {len(done.filled)} grade(s) entered", highlight=False)
    for label, names in (("graded but nothing to enter yet (a quick run, or not graded)",
                          done.not_graded),
                         ("on the template with no submission (grade left empty)",
                          done.no_submission),
                         ("submissions that match no student on the template", done.unmatched)):
        if names:
            err.print(f"[yellow]{len(names)} {label}:[/yellow]", highlight=False)
            for n in names:
                err.print(f"  {for_terminal(n)}", highlight=False)


@main.command()
@click.argument("out", type=click.Path(path_type=Path, file_okay=False))
@click.option("--threshold", type=click.FloatRange(0, 1), default=0.6, show_default=True,
              help="Code similarity from which a pair is listed.")
@click.option("--rubric", type=click.Path(path_type=Path), default=None,
              help="The rubric the class was graded with. Default: the bundled one.")
@_boundary()
def similarity(out, threshold, rubric) -> None:
    """Pairs of similar submissions in a graded class: OUT/similarity.csv."""
    from .rubric import load_rubric
    from .similarity import similar_pairs, write_pairs

    pairs = similar_pairs(out, load_rubric(rubric), threshold)
    target = write_pairs(out, pairs)
    Console(stderr=True).print(f"wrote {target}: {len(pairs)} pair(s)", highlight=False)


if __name__ == "__main__":
    main()
