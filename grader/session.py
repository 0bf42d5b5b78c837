"""One submission's two kinds of child process, seen from the grader.

``Session``: the builder, which imports the submission once and builds and exports each
task's model (and trains one only when its configuration cannot cross).  ``Builders``:
a submission's builders, shared by its lanes, one exchange at a time each; usually one.  ``TrainerProcess``: a lane's trainer, which
never imports the submission and trains what the builder exported.  Either is restarted
after a crash or a timeout.

The messages are ``protocol`` lines; ``task_request`` is the one place where a task
becomes a request.
"""
from __future__ import annotations

import contextlib
import threading
import time
from pathlib import Path

from .rubric import Rubric, Task
from . import fork_server
from .sandbox import Child, Ended, SandboxLimits, student_output, wait_for_hello
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


def exchange(child: Child, request: dict, timeout: float, on_event,
             train_if) -> tuple[dict | None, dict | Ended]:
    """Send one task to ``child``.  When it has built and described the model,
    ``train_if(description)`` decides train or skip; the whole exchange shares ``timeout``.
    Returns the ``described`` message (None if the child answered without one) and the
    result, or why the child's turn ended."""
    t_end = time.monotonic() + timeout
    child.reset_progress(int(request.get("epochs") or 0))
    child.send(request)
    reply = child.wait_for(("described", "result"), timeout, on_event=on_event,
                           task=request["task"])
    if not (isinstance(reply, dict) and reply.get("ev") == "described"):
        return None, reply
    child.send({"op": "train" if train_if(reply["description"]) else "skip"})
    return reply, child.wait_for("result", max(t_end - time.monotonic(), 1.0),
                                 on_event=on_event, task=request["task"])


class TrainerProcess:
    """A lane's trainer: started at once (it imports keras while the builder imports the
    submission), restarted after a task that killed it."""

    def __init__(self, workroot: Path, limits: SandboxLimits, bundle: Path | None,
                 import_timeout_s: float):
        self.workroot = workroot
        self.limits = limits
        self.bundle = bundle
        self.import_timeout_s = import_timeout_s
        self.child: Child | None = None
        self.hello: dict | None = None
        self.starts = 0

    @property
    def alive(self) -> bool:
        return self.child is not None and self.child.alive

    def start(self) -> None:
        """Start the trainer, unless it runs already (a pooled one)."""
        if self.alive:
            return
        self.starts += 1
        self.hello = None
        workdir = self.workroot / f"trainer-{self.starts}"
        workdir.mkdir()
        self.child = Child(workdir, self.limits, self.bundle, role="trainer")

    def ensure(self) -> dict:
        """A started trainer: its hello (raises ``BackendError`` when keras cannot start)."""
        if not self.alive:
            self.close()
            self.start()
        if self.hello is None:
            self.hello = wait_for_hello(self.child, self.import_timeout_s, "trainer")
        return self.hello

    def run(self, request: dict, timeout: float, on_event, train_if):
        self.ensure()
        described, reply = exchange(self.child, request, timeout, on_event, train_if)
        if isinstance(reply, Ended):
            self.close()
        return described, reply

    def close(self) -> None:
        if self.child is not None:
            self.child.close()
            self.child = None


class TrainerPool:
    """Trainers kept from one submission to the next (a class graded on this machine).
    A trainer runs no student code, so the one that trained a submission's models can
    train the next one's, which then starts without waiting for keras to import.  Only a
    trainer started with the same limits and data bundle is reused; one that a task
    killed is not kept, and at most ``max_idle`` wait, the most recently returned (a
    long-lived pool, a Ray worker's, would otherwise keep one for every set of limits it
    ever graded with).  The pool keeps the builders' fork server too
    (``fork_server.py``), where the machine allows one: each submission's builder is
    forked from it, a fresh process, instead of importing keras again."""

    def __init__(self, root: Path, max_idle: int = 8):
        if max_idle < 0:
            raise ValueError(f"max_idle must be 0 or more. Received: max_idle={max_idle}")
        self.root = root
        self.max_idle = max_idle
        self._idle: list[TrainerProcess] = []
        self._made = 0
        self._lock = threading.Lock()
        self._servers: list[fork_server.ForkServer] = []
        self._not_forked: dict[SandboxLimits, str] = {}

    def fork_server(self, limits: SandboxLimits, bundle: Path | None,
                    import_timeout_s: float) -> fork_server.ForkServer | None:
        """The fork server for builders with these limits and data bundle (started now if
        there is none), or None where builders are not forked (``fork_server.possible``)."""
        with self._lock:
            if limits not in self._not_forked:
                self._not_forked[limits] = fork_server.possible(limits) or ""
            if self._not_forked[limits]:
                return None
            for server in self._servers:
                if server.limits == limits and server.bundle == bundle:
                    if server.usable is False:  # it said it cannot fork (JAX, a GPU)
                        self._not_forked[limits] = "the fork server said it cannot fork"
                        self._servers.remove(server)  # closed when it said so
                        return None
                    if server.alive:
                        return server
            self._made += 1
            root = self.root / f"builders-{self._made}"
        server = fork_server.ForkServer(root, limits, bundle, import_timeout_s)
        with self._lock:
            self._servers.append(server)
        return server

    def take(self, limits: SandboxLimits, bundle: Path, import_timeout_s: float
             ) -> TrainerProcess:
        with self._lock:
            for trainer in self._idle:
                if trainer.alive and trainer.limits == limits and trainer.bundle == bundle:
                    self._idle.remove(trainer)
                    return trainer
            self._made += 1
            root = self.root / f"trainer-{self._made}"
        root.mkdir(parents=True)
        return TrainerProcess(root, limits, bundle, import_timeout_s)

    def give_back(self, trainer: TrainerProcess) -> None:
        if not trainer.alive:
            trainer.close()
            return
        with self._lock:
            self._idle.append(trainer)
            surplus = self._idle[:max(0, len(self._idle) - self.max_idle)]
            del self._idle[:len(surplus)]
        for old in surplus:
            old.close()

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
            servers, self._servers = self._servers, []
        for trainer in idle:
            trainer.close()
        for server in servers:
            server.close()


class Session:
    """The builder: one child with the submission imported into it.  Lanes share it;
    ``lock`` makes their exchanges one at a time."""

    def __init__(self, submission: Submission, rubric: Rubric, workroot: Path,
                 limits: SandboxLimits, bundle: Path | None = None,
                 server: fork_server.ForkServer | None = None):
        self.server = server  # builders forked from it where it can (a class's pool)
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
        self.lock = threading.RLock()
        self.busy_since: float | None = None  # when the lane that holds it took it
        self.last_output = None  # the output of the last child closed

    def start(self) -> None:
        """Start a child without waiting for it: it imports keras (seconds) while the
        caller does other work; ``ensure`` then waits for its hello."""
        self.starts += 1
        self.hello = None
        self.started_at = time.monotonic()
        if self.server is not None and self.server.ready():
            self.child = Child(self.server.new_folder(), self.limits, self.bundle,
                               server=self.server)
            return
        workdir = self.workroot / f"child-{self.starts}"
        workdir.mkdir()
        self.child = Child(workdir, self.limits, self.bundle)

    @property
    def alive(self) -> bool:
        return self.child is not None and self.child.alive

    def ensure(self) -> dict | Ended:
        """A child with the submission imported: the ``imported`` message or why not."""
        if self.alive and self.hello is not None:
            return self.imported
        if self.import_failure is not None:
            return self.import_failure  # imported once: the file fails the same way again
        if not self.alive:  # else started early (``start``), importing keras meanwhile
            self.close()
            self.start()
        self.hello = wait_for_hello(self.child, self.rubric.limits.import_timeout_s,
                            "process that runs the submission")
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
        output = self.child.output if self.child is not None else self.last_output
        return output.total if output is not None else 0

    def output_tail(self, since: int = 0) -> str:
        """What the student's code printed (since ``since``), without the backend's own
        start-up logging, the last 4,000 characters."""
        output = self.child.output if self.child is not None else self.last_output
        if output is None:
            return ""
        return student_output(output.text(since=since))[-4000:]

    def run(self, request: dict, timeout: float, on_event, train_if) -> tuple[dict | None,
                                                                              dict | Ended]:
        """Train in the builder (``exchange``): only for a model whose configuration
        cannot cross to the trainer."""
        described, reply = exchange(self.child, request, timeout, on_event, train_if)
        if not isinstance(reply, Ended):
            self.child.settle_output()
        return described, reply

    def export(self, request: dict, timeout: float) -> dict | Ended:
        """Build the task's model and export it (the ``exported`` message), or why the
        child's turn ended (then the child is closed)."""
        imported = self.ensure()
        if isinstance(imported, Ended) or not imported.get("ok"):
            return Ended("exited", "the submission could not be imported")
        self.child.send({**request, "op": "export"})
        reply = self.child.wait_for("exported", timeout, task=request["task"])
        if isinstance(reply, Ended):
            self.close()
        else:
            self.child.settle_output()
        return reply

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
        if self.child is not None and self.child.forked:
            # Forked from the class's fork server, inside its sandbox, and held to its own
            # folder by Landlock as well.
            out["forked"] = True
        return out

    def close(self) -> None:
        if self.child is not None:
            self.child.close()
            self.last_output = self.child.output  # what it printed, for the report
            self.child = None


class Builders:
    """A submission's builders, shared by its lanes.  Building and exporting a model takes
    a fraction of a second, so one builder serves every lane; a lane that finds every
    builder busy for more than ``patience_s`` with an export or a training (the other
    lane's builder function hangs, or a model that cannot cross trains there for
    minutes) starts one of its own, up to one per lane.  While the first builder is still
    importing the submission, a lane waits for it: a second would only import it again."""

    def __init__(self, make, limit: int, patience_s: float = 3.0):
        self.make = make
        self.limit = limit
        self.patience_s = patience_s
        self.all: list[Session] = [make()]
        self._lock = threading.Lock()

    @property
    def first(self) -> Session:
        return self.all[0]

    @property
    def starts(self) -> int:
        return sum(b.starts for b in self.all)

    def _take(self) -> Session:
        while True:
            for builder in list(self.all):
                if builder.lock.acquire(blocking=False):
                    return builder
            # Short waits, not one long one: Ctrl-C reaches the main thread between them.
            if self.first.lock.acquire(timeout=0.25):
                return self.first
            first = self.first
            stuck = first.imported is not None and first.busy_since is not None and \
                time.monotonic() - first.busy_since > self.patience_s
            if stuck:
                with self._lock:
                    if len(self.all) < self.limit:
                        builder = self.make()
                        builder.lock.acquire()
                        self.all.append(builder)
                        return builder

    @contextlib.contextmanager
    def hold(self):
        """A builder for one exchange, this lane's alone until the block ends; closed when
        the block is left by an exception (the exchange was cut short)."""
        builder = self._take()
        builder.busy_since = time.monotonic()
        try:
            yield builder
        except BaseException:
            builder.close()
            raise
        finally:
            builder.busy_since = None
            builder.lock.release()

    def close(self) -> None:
        """Close every builder now, without waiting for the lane that holds one: killing
        its child ends that lane's wait (an interrupted run must not wait for a builder
        function that never returns)."""
        for builder in self.all:
            builder.close()
