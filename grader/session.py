"""One submission's child process, seen from the grader: started, the submission imported
once, a request per task, restarted after a crash or a timeout.

The messages are ``protocol`` lines; ``task_request`` is the one place where a task
becomes a request.
"""
from __future__ import annotations

import time
from pathlib import Path

from .errors import BackendError, GraderError
from .rubric import Rubric, Task
from .sandbox import Child, Ended, SandboxLimits, student_output
from .submission import Submission


def task_request(task: Task, rubric: Rubric, seed: int, *, train: bool,
                 epochs: int | None = None, batch_size: int | None = None,
                 data: Path | None = None, steps_per_execution: int = 1,
                 recheck: bool = False, validate: bool = True,
                 dtype_policy: str = "float32") -> dict:
    """The ``task`` message: build ``task.function``, describe it, and (with ``train``)
    train it under the budget (validating after each epoch with ``validate``) and predict
    the test images in ``data``."""
    request = {"op": "task", "task": task.id, "function": task.function, "seed": seed,
               "input_shape": list(rubric.input_shape), "num_classes": rubric.num_classes,
               "optimizer": rubric.training.optimizer, "loss": rubric.training.loss,
               "train": train, "dtype_policy": dtype_policy}
    if epochs is not None:
        request.update(epochs=epochs, batch_size=batch_size, data=str(data),
                       steps_per_execution=steps_per_execution, recheck=recheck,
                       validate=validate)
    return request


class Session:
    """One child with the submission imported into it."""

    def __init__(self, submission: Submission, rubric: Rubric, workroot: Path,
                 limits: SandboxLimits, bundle: Path | None = None):
        self.limits = limits
        self.bundle = bundle
        self.submission = submission
        self.rubric = rubric
        self.workroot = workroot
        self.child: Child | None = None
        self.hello: dict | None = None
        self.imported: dict | None = None
        self.import_failure: dict | Ended | None = None
        self.import_output = ""
        self.starts = 0
        self.started_at = 0.0
        self.start_s = 0.0  # from starting the child to its hello (importing keras)

    def start(self) -> None:
        """Start a child without waiting for it: it imports keras (seconds) while the
        caller does other work; ``ensure`` then waits for its hello."""
        self.starts += 1
        self.hello = None
        self.started_at = time.monotonic()
        workdir = self.workroot / f"child-{self.starts}"
        workdir.mkdir()
        self.child = Child(workdir, self.limits, self.bundle)

    def ensure(self) -> dict | Ended:
        """A child with the submission imported: the ``imported`` message or why not."""
        alive = self.child is not None and self.child.proc.poll() is None
        if alive and self.hello is not None:
            return self.imported
        if self.import_failure is not None:
            return self.import_failure  # imported once: the file fails the same way again
        if not alive:  # else started early (``start``), importing keras meanwhile
            self.close()
            self.start()
        hello = self.child.wait_for("hello", self.rubric.limits.import_timeout_s)
        if isinstance(hello, Ended):
            tail = self.child.output.text().strip().splitlines()[-5:]
            raise BackendError("Could not start keras in a child process: " + hello.message
                              + (": " + " / ".join(tail) if tail else ""),
                              hint="Check that keras and a backend (TensorFlow, JAX or PyTorch) "
                                   "import in this Python: python -c 'import keras'.")
        self.hello = hello
        self.start_s = time.monotonic() - self.started_at
        self.child.send({"op": "import",
                         "path": str(self.submission.module_path(self.child.workdir))})
        imported = self.child.wait_for("imported", self.rubric.limits.import_timeout_s)
        if isinstance(imported, Ended) or not imported.get("ok"):
            self.imported = None
            self.import_failure, self.import_output = imported, self.output_tail()
            return imported
        self.imported = imported
        return imported

    @property
    def output_mark(self) -> int:
        """Where the child's output stands now: ``output_tail(since=...)`` reads from here."""
        return self.child.output.total if self.child is not None else 0

    def output_tail(self, since: int = 0) -> str:
        """What the student's code printed (since ``since``), without the backend's own
        start-up logging, the last 4,000 characters."""
        if self.child is None:
            return ""
        return student_output(self.child.output.text(since=since))[-4000:]

    def run(self, request: dict, timeout: float, on_event, train_if) -> tuple[dict | None,
                                                                              dict | Ended]:
        """Send one task.  When the child has built and described the model,
        ``train_if(description)`` decides train or skip; the whole exchange shares
        ``timeout``.  Returns the ``described`` message (None if the child answered without
        one) and the result, or why the child's turn ended."""
        t_end = time.monotonic() + timeout
        self.child.reset_progress(int(request.get("epochs") or 0))
        self.child.send(request)
        reply = self.child.wait_for(("described", "result"), timeout, on_event=on_event,
                                    task=request["task"])
        if not (isinstance(reply, dict) and reply.get("ev") == "described"):
            return None, reply
        self.child.send({"op": "train" if train_if(reply["description"]) else "skip"})
        return reply, self.child.wait_for("result", max(t_end - time.monotonic(), 1.0),
                                          on_event=on_event, task=request["task"])

    def describe_only(self, task: Task, seed: int, dtype_policy: str) -> dict | None:
        """Build (not train) a model that another task is compared with: its description,
        or None when it does not build."""
        imported = self.ensure()
        if isinstance(imported, Ended) or not imported.get("ok") or \
                task.function not in imported["callables"]:
            return None
        self.child.send(task_request(task, self.rubric, seed, train=False,
                                     dtype_policy=dtype_policy))
        reply = self.child.wait_for("result", self.rubric.limits.import_timeout_s,
                                    task=task.id)
        if isinstance(reply, Ended):
            self.close()
            return None
        return reply["description"] if reply.get("ok") else None

    def sandbox_record(self) -> dict:
        """What actually confined the child: what the parent chose, as the child reports it."""
        chosen = self.limits.confinement
        reported = self.hello.get("sandbox") or {}
        why = chosen.why if chosen else "no sandbox was chosen"
        if reported.get("problem"):
            why += f"; but {reported['problem']}"
        out = {"kind": reported.get("kind", "none"), "why": why}
        if reported.get("landlock"):
            out["landlock"] = reported["landlock"]
        return out

    def close(self) -> None:
        if self.child is not None:
            self.child.close()
            self.child = None
