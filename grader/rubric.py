"""The rubric: tasks, thresholds, budgets and points, as validated data.

A rubric is a TOML file loaded into frozen dataclasses.  Validation is strict,
in the manner of pypa/build's config checks: an unknown key is an error with a
"did you mean" hint, never silently ignored, because a misspelt
``treshold = 0.62`` that is dropped would grade a whole class against no
threshold at all.
"""
from __future__ import annotations

import dataclasses
import difflib
import hashlib
import re
import sys
import types
import typing
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 (Colab) only
    import tomli as tomllib

from .errors import RubricError

SCHEMA = 1
DEFAULT_RUBRIC = "cifar10"


@dataclass(frozen=True)
class TrainingDefaults:
    """What a task trains with when the student's ``TRAINING`` dict is silent."""

    batch_size: int = 32
    optimizer: str = "adam"
    loss: str = "sparse_categorical_crossentropy"
    max_batch_size: int = 4096


@dataclass(frozen=True)
class QuickSettings:
    """``--quick``: a smoke check on a subset, one short epoch, no accuracy verdict."""

    train_samples: int = 512
    val_samples: int = 500
    test_samples: int = 200
    epochs: int = 1
    timeout_s: float = 300.0


@dataclass(frozen=True)
class Limits:
    """Wall-clock limits that are not per task."""

    import_timeout_s: float = 120.0
    submission_timeout_s: float = 6 * 3600.0
    memory_mb: int = 8192
    max_file_mb: int = 2048
    block_network: bool = True


@dataclass(frozen=True)
class Fairness:
    """Re-grading near a threshold: a run within ``borderline_band`` (test accuracy, as a
    fraction) of a threshold is repeated until ``borderline_seeds`` seeds have run, and the
    verdict is on their mean."""

    borderline_band: float = 0.01
    borderline_seeds: int = 3
    # Held for review (zero points until a TA looks): a test accuracy more than review_gap
    # above the best validation accuracy, or test predictions that agree with those of the
    # same model re-initialised on at least review_agreement of the images.
    review_gap: float = 0.05
    review_agreement: float = 0.9
    # A model whose configuration cannot be rebuilt from keras' own classes (a custom layer
    # or model class, a Lambda, a custom loss): "hold" trains it in the process that runs
    # the student's code and holds a pass for a TA; "fail" fails the task.
    custom_code: str = "hold"


@dataclass(frozen=True)
class Task:
    id: str
    question: str
    title: str
    function: str
    max_epochs: int
    epochs: int
    points: float
    timeout_s: float
    threshold: float | None = None
    batch_size: int | None = None
    require_layers: tuple[str, ...] = ()
    forbid_layers: tuple[str, ...] = ()
    same_as: str | None = None
    same_as_ignoring: tuple[str, ...] = ()
    compare_with: str | None = None
    description: str = ""


@dataclass(frozen=True)
class Comparison:
    """A verdict across two tasks, such as Q5: the CNN beats the FC model with fewer parameters."""

    id: str
    question: str
    title: str
    task: str
    baseline: str
    points: float
    higher_accuracy: bool = True
    fewer_params: bool = False


@dataclass(frozen=True)
class RubricItem:
    """One line of a written question's marking scheme: points and what earns them."""

    points: float
    description: str


@dataclass(frozen=True)
class Written:
    """A question the student answers in words (in a notebook's Markdown, ``ANSWERS`` in a
    .py, or a report beside the code), graded by a TA on the desk (``grader review``)."""

    id: str
    title: str
    points: float
    items: tuple[RubricItem, ...] = ()
    # Regular expressions for the line that starts the answer (a heading such as "## Q7"
    # or "Question 7"); matched case-insensitively at the start of a line.
    patterns: tuple[str, ...] = ()
    # Tasks whose measured numbers the desk shows beside the answer.
    evidence: tuple[str, ...] = ()


@dataclass(frozen=True)
class Rubric:
    id: str
    version: str
    title: str
    dataset: str
    input_shape: tuple[int, ...]
    num_classes: int
    class_names: tuple[str, ...]
    seed: int
    validation_fraction: float
    split_seed: int
    tasks: tuple[Task, ...]
    comparisons: tuple[Comparison, ...] = ()
    written: tuple[Written, ...] = ()
    training: TrainingDefaults = field(default_factory=TrainingDefaults)
    quick: QuickSettings = field(default_factory=QuickSettings)
    limits: Limits = field(default_factory=Limits)
    fairness: Fairness = field(default_factory=Fairness)
    schema: int = SCHEMA
    path: str = ""
    sha256: str = ""

    def task(self, task_id: str) -> Task:
        for task in self.tasks:
            if task.id == task_id:
                return task
        raise KeyError(task_id)

    @property
    def task_ids(self) -> tuple[str, ...]:
        return tuple(t.id for t in self.tasks)

    @property
    def max_points(self) -> float:
        """The points the machine grades: tasks and comparisons (written questions are a
        TA's, counted in the gradebook)."""
        return sum(t.points for t in self.tasks) + sum(c.points for c in self.comparisons)

    @property
    def written_points(self) -> float:
        return sum(w.points for w in self.written)


# ---------------------------------------------------------------------------
# Loading and validation

def default_rubric_path() -> Path:
    """The rubric that ships with the grader (``rubrics/cifar10.toml``)."""
    checkout = Path(__file__).resolve().parent.parent / "rubrics" / f"{DEFAULT_RUBRIC}.toml"
    if checkout.is_file():
        return checkout
    return Path(str(resources.files("grader.rubrics") / f"{DEFAULT_RUBRIC}.toml"))


def load_rubric(path: str | Path | None = None) -> Rubric:
    """Load and validate a rubric file; ``None`` loads the bundled CIFAR-10 rubric."""
    path = Path(path) if path is not None else default_rubric_path()
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise RubricError(f"Rubric file not found: {path}",
                          hint="Pass --rubric with the path of a .toml rubric, or leave it out "
                               "to use the bundled CIFAR-10 rubric.") from None
    except OSError as exc:
        raise RubricError(f"Cannot read rubric {path}: {exc.strerror}") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise RubricError(f"Rubric {path} is not valid TOML: {exc}",
                          hint="Check the line named above; strings need quotes.") from None
    return parse_rubric(data, path=str(path), sha256=hashlib.sha256(raw).hexdigest())


def parse_rubric(data: dict, path: str = "<memory>", sha256: str = "") -> Rubric:
    """Validate a rubric already parsed from TOML into a dict."""
    where = Path(path).name
    data = dict(data)
    tasks_raw = data.pop("tasks", None)
    comps_raw = data.pop("comparisons", {})
    written_raw = data.pop("written", [])
    section_names = ("training", "quick", "limits", "fairness")
    sections = {name: data.pop(name, {}) for name in section_names}
    top_fields = {f.name for f in dataclasses.fields(Rubric)} - {
        "tasks", "comparisons", "written", "path", "sha256", *section_names}
    _reject_unknown(data, top_fields | {"tasks", "comparisons", "written", *section_names},
                    where)
    if not isinstance(tasks_raw, dict) or not tasks_raw:
        raise RubricError(f"{where}: no tasks. Expected at least one [tasks.<id>] table.",
                          hint="See rubrics/cifar10.toml for the shape of a task.")
    kwargs = _fields_from(Rubric, data, where, skip={"tasks", "comparisons", "written", "path",
                                                     "sha256", *section_names})
    for name, cls in (("training", TrainingDefaults), ("quick", QuickSettings), ("limits", Limits),
                      ("fairness", Fairness)):
        table = sections[name]
        if not isinstance(table, dict):
            raise RubricError(f"{where}: [{name}] must be a table. Received: {table!r}")
        kwargs[name] = cls(**_fields_from(cls, table, f"{where} [{name}]"))
    tasks = []
    for task_id, table in tasks_raw.items():
        if not isinstance(table, dict):
            raise RubricError(f"{where}: [tasks.{task_id}] must be a table. Received: {table!r}")
        tasks.append(Task(id=task_id, **_fields_from(Task, table, f"{where} [tasks.{task_id}]",
                                                     skip={"id"})))
    comparisons = []
    if not isinstance(comps_raw, dict):
        raise RubricError(f"{where}: 'comparisons' must be a table of tables.")
    for comp_id, table in comps_raw.items():
        if not isinstance(table, dict):
            raise RubricError(f"{where}: [comparisons.{comp_id}] must be a table.")
        comparisons.append(Comparison(id=comp_id, **_fields_from(
            Comparison, table, f"{where} [comparisons.{comp_id}]", skip={"id"})))
    rubric = Rubric(tasks=tuple(tasks), comparisons=tuple(comparisons),
                    written=_written(written_raw, where), path=path, sha256=sha256, **kwargs)
    _check_consistency(rubric, where)
    return rubric


def _written(raw, where: str) -> tuple[Written, ...]:
    if not isinstance(raw, list) or not all(isinstance(w, dict) for w in raw):
        raise RubricError(f"{where}: 'written' must be an array of tables ([[written]]).")
    out = []
    for i, table in enumerate(raw):
        w = f"{where} [[written]] {table.get('id', i + 1)}"
        items_raw = table.get("items", [])
        if not isinstance(items_raw, list) or not all(isinstance(x, dict) for x in items_raw):
            raise RubricError(f"{w}: items must be a list of {{points, description}} tables.")
        items = tuple(RubricItem(**_fields_from(RubricItem, x, f"{w} items[{k}]"))
                      for k, x in enumerate(items_raw))
        fields = _fields_from(Written, {k: v for k, v in table.items() if k != "items"}, w,
                              skip={"items"})
        out.append(Written(items=items, **fields))
    return tuple(out)


def _reject_unknown(table: dict, known: set[str], where: str) -> None:
    for key in table:
        if key not in known:
            close = difflib.get_close_matches(key, sorted(known), n=1)
            hint = f"Did you mean '{close[0]}'?" if close else \
                f"Known keys here: {', '.join(sorted(known))}."
            raise RubricError(f"{where}: unknown key '{key}'.", hint=hint)


def _fields_from(cls, table: dict, where: str, skip: set[str] = frozenset()) -> dict:
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.name not in skip}
    _reject_unknown(table, set(fields), where)
    out = {}
    for name, f in fields.items():
        if name not in table:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise RubricError(f"{where}: missing required key '{name}'.",
                                  hint=f"Add '{name} = ...' ({_type_name(hints[name])}).")
            continue
        out[name] = _coerce(table[name], hints[name], f"{where} {name}")
    return out


def _type_name(tp) -> str:
    return getattr(tp, "__name__", str(tp)).replace("typing.", "")


def _coerce(value, tp, where: str):
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _coerce(value, inner, where)
    if origin is tuple:
        if not isinstance(value, list):
            raise RubricError(f"{where}: expected a list. Received: {value!r}")
        return tuple(_coerce(v, args[0], f"{where}[{i}]") for i, v in enumerate(value))
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise RubricError(f"{where}: expected a number. Received: {value!r}")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise RubricError(f"{where}: expected an integer. Received: {value!r}")
        return value
    if tp is bool and not isinstance(value, bool):
        raise RubricError(f"{where}: expected true or false. Received: {value!r}")
    if tp is str and not isinstance(value, str):
        raise RubricError(f"{where}: expected a string. Received: {value!r}")
    return value


def _check_consistency(r: Rubric, where: str) -> None:
    def bad(msg, hint=None):
        raise RubricError(f"{where}: {msg}", hint=hint)

    if r.schema != SCHEMA:
        bad(f"schema {r.schema} is not supported. Expected: schema = {SCHEMA}.")
    if not 0.0 < r.validation_fraction < 1.0:
        bad(f"validation_fraction must be between 0 and 1. Received: {r.validation_fraction}")
    if r.num_classes < 2:
        bad(f"num_classes must be at least 2. Received: {r.num_classes}")
    if len(r.class_names) != r.num_classes:
        bad(f"class_names has {len(r.class_names)} names but num_classes = {r.num_classes}.")
    if not r.input_shape or any(d <= 0 for d in r.input_shape):
        bad(f"input_shape must be positive sizes. Received: {list(r.input_shape)}")
    if r.training.batch_size < 1 or r.training.max_batch_size < r.training.batch_size:
        bad("[training] needs 1 <= batch_size <= max_batch_size. Received: "
            f"batch_size={r.training.batch_size}, max_batch_size={r.training.max_batch_size}")
    q = r.quick
    if min(q.train_samples, q.val_samples, q.test_samples, q.epochs) < 1 or q.timeout_s <= 0:
        bad("[quick] sample counts, epochs and timeout_s must be positive.")
    if r.limits.import_timeout_s <= 0 or r.limits.submission_timeout_s <= 0:
        bad("[limits] timeouts must be positive.")
    if r.limits.memory_mb < 256 or r.limits.max_file_mb < 1:
        bad(f"[limits] memory_mb must be >= 256 and max_file_mb >= 1. Received: "
            f"memory_mb={r.limits.memory_mb}, max_file_mb={r.limits.max_file_mb}")
    if not 0 <= r.fairness.borderline_band < 1 or r.fairness.borderline_seeds < 1:
        bad("[fairness] needs 0 <= borderline_band < 1 and borderline_seeds >= 1. Received: "
            f"{r.fairness}")
    if r.fairness.custom_code not in ("hold", "fail"):
        close = difflib.get_close_matches(str(r.fairness.custom_code), ["hold", "fail"], n=1)
        bad(f"[fairness] custom_code must be \"hold\" or \"fail\". Received: "
            f"{r.fairness.custom_code!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    if not 0 < r.fairness.review_gap < 1 or not 0 < r.fairness.review_agreement <= 1:
        bad("[fairness] needs 0 < review_gap < 1 and 0 < review_agreement <= 1. Received: "
            f"{r.fairness}")
    ids = r.task_ids
    functions = [t.function for t in r.tasks]
    for t in r.tasks:
        w = f"[tasks.{t.id}]"
        if t.threshold is not None and not 0.0 <= t.threshold <= 1.0:
            bad(f"{w} threshold is a test accuracy between 0 and 1. Received: {t.threshold}",
                hint=f"Write {t.threshold / 100:g} for {t.threshold:g}%." if 1 < t.threshold <= 100
                else None)
        if not 1 <= t.epochs <= t.max_epochs:
            bad(f"{w} needs 1 <= epochs <= max_epochs. Received: epochs={t.epochs}, "
                f"max_epochs={t.max_epochs}")
        if t.batch_size is not None and not 1 <= t.batch_size <= r.training.max_batch_size:
            bad(f"{w} batch_size must be between 1 and {r.training.max_batch_size}. "
                f"Received: {t.batch_size}")
        if t.points < 0 or t.timeout_s <= 0:
            bad(f"{w} points must be >= 0 and timeout_s > 0.")
        if not t.function.isidentifier():
            bad(f"{w} function must be a Python name. Received: {t.function!r}")
        if functions.count(t.function) > 1:
            bad(f"{w} function {t.function!r} is used by two tasks.")
        if t.same_as is not None:
            if t.same_as not in ids or t.same_as == t.id:
                close = difflib.get_close_matches(t.same_as, ids, n=1)
                bad(f"{w} same_as names no other task: {t.same_as!r}.",
                    hint=f"Did you mean '{close[0]}'?" if close else f"Tasks: {', '.join(ids)}.")
            if ids.index(t.same_as) > ids.index(t.id):
                bad(f"{w} same_as must name a task listed before it. Received: {t.same_as!r}")
        elif t.same_as_ignoring:
            bad(f"{w} same_as_ignoring without same_as.", hint="Add same_as = \"<task id>\".")
        if t.compare_with is not None and t.compare_with not in ids:
            bad(f"{w} compare_with names no task: {t.compare_with!r}.",
                hint=f"Tasks: {', '.join(ids)}.")
    seen = set()
    for wq in r.written:
        w = f"[[written]] {wq.id}"
        if wq.id in seen:
            bad(f"{w}: the id is used twice.")
        seen.add(wq.id)
        if wq.points < 0 or any(i.points < 0 for i in wq.items):
            bad(f"{w}: points must be >= 0.")
        if wq.items and sum(i.points for i in wq.items) > wq.points:
            bad(f"{w}: its items add up to {sum(i.points for i in wq.items):g} points, more "
                f"than the question's {wq.points:g}.")
        for pattern in wq.patterns:
            try:
                re.compile(pattern)
            except re.error as exc:
                bad(f"{w}: pattern {pattern!r} is not a regular expression: {exc}")
        for tid in wq.evidence:
            if tid not in ids:
                close = difflib.get_close_matches(tid, ids, n=1)
                bad(f"{w}: evidence names no task: {tid!r}.",
                    hint=f"Did you mean '{close[0]}'?" if close else f"Tasks: {', '.join(ids)}.")
    for c in r.comparisons:
        for role in ("task", "baseline"):
            ref = getattr(c, role)
            if ref not in ids:
                close = difflib.get_close_matches(ref, ids, n=1)
                bad(f"[comparisons.{c.id}] {role} names no task: {ref!r}.",
                    hint=f"Did you mean '{close[0]}'?" if close else f"Tasks: {', '.join(ids)}.")
        if c.points < 0:
            bad(f"[comparisons.{c.id}] points must be >= 0.")
