"""How to grade: one value, validated once, that ``check``, ``grade``, the CLI and a remote
worker all take, and that travels as JSON.

    opts = GradeOptions(tasks="fc,cnn", quick=True)
    grader.check("lab.py", opts, data="cifar10.npz")     # or grader.check("lab.py", quick=True)

What and where (the submission, the rubric, the data, the output folder) are not
options: they are the arguments beside it.
"""
from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass

from .errors import UsageError

# Measured on the 2-core CPU (benchmarks/overhead.py, docs/measurements.md): the same numbers as 1, less
# time in Python between batches.
DEFAULT_STEPS_PER_EXECUTION = 32
# keras dtype policies a run may opt into; None trains in float32 as the student would.
MIXED_PRECISION = ("mixed_float16", "mixed_bfloat16")
SANDBOXES = ("auto", "bubblewrap", "landlock", "none")


def _positive_int(name: str, value, minimum: int = 1) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise UsageError(f"{name} must be an integer >= {minimum}. Received: {value!r}")


@dataclass(frozen=True)
class GradeOptions:
    """``tasks``: task ids (a tuple, or "fc,cnn"); None grades all.  ``seed``: None takes
    the rubric's.  ``quick``: the smoke check (no grade).  ``seeds``: train every task
    that many times and judge the mean.  ``task_timeout_s``, ``submission_timeout_s``
    and ``memory_mb`` override the rubric's limits.  ``mixed_precision``:
    "mixed_float16" or "mixed_bfloat16" (keras' policy names, also on the command line),
    an opt-in that changes the numbers.  ``sandbox``: "auto" takes the best this machine allows.
    ``gpu``: the id of the one GPU the child may use; ``gpu_shared``: other gradings
    train on it too."""

    tasks: tuple[str, ...] | None = None
    seed: int | None = None
    quick: bool = False
    seeds: int = 1
    steps_per_execution: int = DEFAULT_STEPS_PER_EXECUTION
    task_timeout_s: float | None = None
    submission_timeout_s: float | None = None
    memory_mb: int | None = None
    mixed_precision: str | None = None
    sandbox: str = "auto"
    gpu: str | None = None
    gpu_shared: bool = False

    def __post_init__(self):
        tasks = self.tasks
        if isinstance(tasks, str):
            tasks = [t for t in tasks.split(",") if t.strip()]
        if tasks is not None:
            tasks = tuple(str(t).strip() for t in tasks) or None
        object.__setattr__(self, "tasks", tasks)
        if self.seed is not None:
            _positive_int("seed", self.seed, minimum=0)
        _positive_int("seeds", self.seeds)
        _positive_int("steps_per_execution", self.steps_per_execution)
        for name in ("task_timeout_s", "submission_timeout_s"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or
                                      not isinstance(value, (int, float)) or value <= 0):
                raise UsageError(f"{name} must be a positive number of seconds. "
                                 f"Received: {value!r}")
        if self.memory_mb is not None:
            _positive_int("memory_mb (the memory limit, MiB)", self.memory_mb, minimum=256)
        if self.mixed_precision is not None and self.mixed_precision not in MIXED_PRECISION:
            raise UsageError(f"mixed_precision must be one of {', '.join(MIXED_PRECISION)} or "
                             f"None. Received: {self.mixed_precision!r}")
        if self.sandbox not in SANDBOXES:
            raise UsageError(f"sandbox must be one of {', '.join(SANDBOXES)}. "
                             f"Received: {self.sandbox!r}")
        if not isinstance(self.quick, bool) or not isinstance(self.gpu_shared, bool):
            raise UsageError(f"quick and gpu_shared are true or false. Received: "
                             f"quick={self.quick!r}, gpu_shared={self.gpu_shared!r}")

    @property
    def mode(self) -> str:
        return "quick" if self.quick else "full"

    @property
    def dtype_policy(self) -> str:
        return self.mixed_precision or "float32"

    def replace(self, **changes) -> "GradeOptions":
        _check_names(changes)
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["tasks"] = list(self.tasks) if self.tasks is not None else None
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "GradeOptions":
        _check_names(d)
        return cls(**d)

    def identity(self, rubric) -> dict:
        """What decides a task's result, with the rubric's defaults filled in: two runs
        with the same identity (and the same submission, rubric and data) are the same
        job, so one's finished tasks stand for the other's.  Where and how fast it runs
        (sandbox, GPU, steps per execution: the same maths) are not part of it."""
        return {"mode": self.mode,
                "seed": rubric.seed if self.seed is None else self.seed,
                "seeds": self.seeds, "dtype_policy": self.dtype_policy,
                "task_timeout_s": self.task_timeout_s,
                "submission_timeout_s": self.submission_timeout_s
                or rubric.limits.submission_timeout_s,
                "memory_mb": self.memory_mb or rubric.limits.memory_mb}


_FIELDS = tuple(f.name for f in dataclasses.fields(GradeOptions))


def _check_names(d: dict) -> None:
    for key in d:
        if key not in _FIELDS:
            close = difflib.get_close_matches(key, _FIELDS, n=1)
            raise UsageError(f"Unknown grading option {key!r}. Expected one of: "
                             f"{', '.join(_FIELDS)}",
                             hint=f"Did you mean {close[0]!r}?" if close else None)


def options_from(options: GradeOptions | None, changes: dict) -> GradeOptions:
    """``options`` (default: the defaults) with keyword overrides, as ``check(path, **kw)``
    and ``grade_batch(paths, out, **kw)`` take them."""
    base = options if options is not None else GradeOptions()
    if not isinstance(base, GradeOptions):
        raise UsageError(f"options must be a GradeOptions. Received: {type(base).__name__}")
    return base.replace(**changes) if changes else base
