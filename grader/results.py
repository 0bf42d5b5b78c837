"""Results as data: dataclasses, a versioned JSON schema, atomic writes.

The terminal summary, ``report.html`` and every other output are renderings
of one ``Results`` object; ``results.json`` is its faithful copy.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

from .atomic import write_json
from .errors import ResultsError

SCHEMA_VERSION = 1

try:
    from enum import StrEnum
except ImportError:  # Python 3.10 (Gradescope's image): the same behaviour, spelled out
    from enum import Enum

    class StrEnum(str, Enum):
        def __str__(self) -> str:
            return str.__str__(self)

        def __format__(self, spec: str) -> str:
            return str.__format__(self, spec)


class Status(StrEnum):
    """A task's or comparison's outcome.  Equal to its string, so results.json and
    templates see "passed", "failed", ..."""

    PASSED = "passed"
    FAILED = "failed"
    ERROR = "error"
    SKIPPED = "skipped"
    # A quick run's verdict for a task that builds, passes the structure checks and
    # trains: never "passed", and never points, so a pre-check cannot be mistaken for a
    # grade.
    CHECKED = "checked"
    # A task that would pass but shows signs of an answer that did not come from training
    # (checks.REVIEW findings): zero points until a TA has looked.
    HELD = "held"
    # While a task is graded, before ``checks.decide``; never in a finished result.
    PENDING = "pending"


class ErrorKind(StrEnum):
    """Why a task is an ``error``, set where the error happens, so that nothing needs to
    read the wording of a reason to know what went wrong."""

    IMPORT = "import"          # the submission (or a module a builder needs) did not import
    MISSING = "missing"        # a required function is not defined
    EXCEPTION = "exception"    # the student's code raised
    TIMEOUT = "timeout"        # a time limit ran out (the task's or the submission's)
    MEMORY = "memory"          # the memory limit was hit
    DISK = "disk"              # the working folder outgrew its limit
    CRASH = "crash"            # the child process died
    PROTOCOL = "protocol"      # the child broke the protocol (tampering, or a grader bug)
    GRADER = "grader"          # a bug in the grader's own process while grading the task


PASSED, FAILED, ERROR, SKIPPED = Status.PASSED, Status.FAILED, Status.ERROR, Status.SKIPPED
CHECKED, HELD = Status.CHECKED, Status.HELD
# Statuses that do not make a run fail (exit code 0).
OK_STATUSES = (PASSED, CHECKED, SKIPPED)


def percent(value: float | None, digits: int | None = None) -> str:
    """A share as a percentage: with ``digits`` decimals, or else exactly as written in
    the rubric (0.62 -> "62%", 0.625 -> "62.5%"), never rounded across a threshold."""
    if value is None:
        return "-"
    if digits is not None:
        return f"{100 * value:.{digits}f}%"
    return f"{round(100 * value, 6):g}%"


@dataclass
class Finding:
    """One check's outcome.  ``severity`` "error" fails the task; "warning" and "info" inform."""

    check: str
    ok: bool
    message: str
    severity: str = "error"


@dataclass
class TaskResult:
    id: str
    question: str
    title: str
    function: str
    status: Status
    reason: str
    points: float = 0.0
    max_points: float = 0.0
    threshold: float | None = None
    test_accuracy: float | None = None
    findings: list[Finding] = field(default_factory=list)
    params_total: int | None = None
    params_trainable: int | None = None
    epochs: int | None = None
    epochs_run: int | None = None
    batch_size: int | None = None
    history: dict[str, list[float]] = field(default_factory=dict)
    confusion_matrix: list[list[int]] | None = None
    per_class_accuracy: list[float] | None = None
    timings: dict[str, float] = field(default_factory=dict)
    compile: dict | None = None
    description: dict | None = None
    error: dict | None = None
    output_tail: str = ""
    misclassified: list[dict] = field(default_factory=list)
    reference: dict | None = None
    max_epochs: int | None = None
    compare_with: str | None = None
    runs: list[dict] = field(default_factory=list)  # one per seed when several were trained
    test_accuracy_std: float | None = None
    borderline: bool = False
    shown_seed: int | None = None  # the seed whose curves and confusion matrix are shown
    # Share of test images on which the trained model and a freshly re-initialised copy
    # predict the same class (near chance for a model whose answers come from its weights).
    reinit_agreement: float | None = None
    error_kind: ErrorKind | None = None  # set with status "error"


@dataclass
class ComparisonResult:
    id: str
    question: str
    title: str
    task: str
    baseline: str
    status: Status
    reason: str
    points: float = 0.0
    max_points: float = 0.0


@dataclass
class Results:
    submission: dict
    rubric: dict
    mode: str
    seed: int
    started_at: str
    data: dict = field(default_factory=dict)
    environment: dict = field(default_factory=dict)
    tasks: list[TaskResult] = field(default_factory=list)
    comparisons: list[ComparisonResult] = field(default_factory=list)
    notes: list[Finding] = field(default_factory=list)
    finished_at: str | None = None
    grader_version: str = ""
    schema_version: int = SCHEMA_VERSION
    # What makes two runs the same grading job (jobs.job_identity): compared on resume.
    job: dict = field(default_factory=dict)
    options: dict = field(default_factory=dict)  # the GradeOptions, as given
    # A quick run's estimate of a full grade's time on this machine (grader.estimate).
    estimate: dict | None = None
    # The answers to the rubric's written questions (grader.written): id, title, points,
    # text, where it was found, found.  A TA grades them (grader review).
    written: list[dict] = field(default_factory=list)
    # What TAs decided on the desk and released (grader release): written questions'
    # points and comments, held tasks accepted or rejected, each with who and when.
    review: dict | None = None

    @property
    def graded(self) -> bool:
        """False for a quick run: a pre-check, with no points anywhere."""
        return self.mode == "full"

    @property
    def points(self) -> float | None:
        if not self.graded:
            return None
        return sum(t.points for t in self.tasks) + sum(c.points for c in self.comparisons)

    @property
    def max_points(self) -> float | None:
        if not self.graded:
            return None
        return sum(t.max_points for t in self.tasks) + sum(c.max_points for c in self.comparisons)

    @property
    def passed(self) -> bool:
        """Nothing failed or errored (in a quick run: every task was checked)."""
        return all(x.status in OK_STATUSES for x in [*self.tasks, *self.comparisons])

    def task(self, task_id: str) -> TaskResult | None:
        return next((t for t in self.tasks if t.id == task_id), None)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["points"], d["max_points"] = self.points, self.max_points
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Results":
        version = d.get("schema_version")
        if version != SCHEMA_VERSION:
            raise ResultsError(f"Unsupported results schema_version. Expected: {SCHEMA_VERSION}. "
                               f"Received: {version!r}",
                               hint="Re-grade with this grader version, or use the grader "
                                    "version that wrote the file.")
        d = dict(d)
        d.pop("points", None)
        d.pop("max_points", None)
        try:
            tasks = [TaskResult(**{**t, "status": Status(t["status"]),
                                   "error_kind": t.get("error_kind") and ErrorKind(t["error_kind"]),
                                   "findings": [Finding(**f) for f in t.get("findings", [])]})
                     for t in d.pop("tasks", [])]
            comps = [ComparisonResult(**{**c, "status": Status(c["status"])})
                     for c in d.pop("comparisons", [])]
        except (KeyError, ValueError) as exc:
            raise TypeError(f"bad task or comparison: {exc}") from None
        notes = [Finding(**f) for f in d.pop("notes", [])]
        return cls(tasks=tasks, comparisons=comps, notes=notes, **d)


def save_results(results: Results, path: Path) -> None:
    write_json(path, results.to_dict())


def load_results(path: Path) -> Results:
    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise ResultsError(f"Results file not found: {path}",
                           hint="Run `grader check SUBMISSION --out DIR` first.") from None
    except (ValueError, OSError) as exc:
        raise ResultsError(f"Cannot read results file {path}: {exc}") from None
    if not isinstance(data, dict):
        raise ResultsError(f"{path} is not a grader results file. Expected a JSON object. "
                           f"Received: a JSON {type(data).__name__}",
                           hint="Give the results.json that grader check --out wrote.")
    try:
        return Results.from_dict(data)
    except (TypeError, KeyError, AttributeError, ValueError) as exc:
        raise ResultsError(f"{path} is not a grader results file: {exc}") from None
