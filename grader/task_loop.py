"""The grader's side of one task: check the budget, have the builder export the model,
have the trainer rebuild, describe and train it (or, for custom code, the builder), run
the structure checks between, read the reply, re-train further seeds, decide.  Test
labels never leave this process.
"""
from __future__ import annotations

import math
import statistics
import time
import traceback
from pathlib import Path
from typing import NamedTuple

from . import architecture, checks
from .errors import GraderError
from .environment import unused_gpus
from .imports import needed_failed_import, submission_notes
from .lanes import LoopShared
from .options import GradeOptions
from .progress import GradeProgress
from .replies import TestSet, apply_reply, import_failure, read_predictions
from .results import ERROR, ErrorKind, Finding, Results, TaskResult
from .rubric import Rubric, Task
from .sandbox import Ended
from .session import Builders, TrainerProcess, task_request
from .submission import missing_function_message, training_settings, training_table_findings

# How an Ended child turn reads in a task's reason, and what kind of error it is.
_ENDED_KIND = {"timeout": ErrorKind.TIMEOUT, "memory": ErrorKind.MEMORY,
               "disk": ErrorKind.DISK, "exited": ErrorKind.CRASH,
               "protocol": ErrorKind.PROTOCOL}


class TaskLoop:
    """Grades tasks of one submission in one session (one lane); holds what they share:
    the results so far, the data bundle, the test labels (which never leave this process),
    the progress display and the submission's deadline.  Several loops (lanes) may share
    one ``LoopShared`` and grade side by side (``run_lanes``)."""

    def __init__(self, builders: Builders, trainer: TrainerProcess, results: Results,
                 options: GradeOptions, bundle: Path, test: TestSet, progress: GradeProgress,
                 save, deadline: float, shared: LoopShared | None = None):
        self.builders = builders
        self.trainer = trainer
        self.rubric = builders.first.rubric
        self.sub = builders.first.submission
        self.results = results
        self.options = options
        self.bundle = bundle
        self.test = test
        self.progress = progress
        self.save = save
        self.deadline = deadline
        self.seed = results.seed
        self.shared = shared or LoopShared()
        self.descriptions = self.shared.descriptions

    def run_one(self, task: Task, done: dict[str, TaskResult]) -> None:
        lock = self.shared.lock
        if task.id in done:
            with lock:
                self.results.tasks.append(done[task.id])
                if done[task.id].description:
                    self.descriptions[task.id] = done[task.id].description
                self.progress.task_finished(done[task.id])
            return
        result = TaskResult(task.id, task.question, task.title, task.function,
                            status=ERROR, reason="", max_points=task.points,
                            threshold=task.threshold, max_epochs=task.max_epochs,
                            compare_with=task.compare_with)
        try:
            self.grade(task, result)
        except GraderError:
            raise  # the grader cannot run here at all: the caller says why
        except Exception as exc:  # a grader bug costs this task, not the submission
            result.status, result.error_kind, result.points = ERROR, ErrorKind.GRADER, 0.0
            result.reason = (f"The grader failed while grading {task.function} (a bug in "
                             f"the grader, not a verdict on your code): "
                             f"{type(exc).__name__}: {exc}")
            result.error = {"type": type(exc).__name__, "message": str(exc),
                            "traceback": traceback.format_exc()}
            self.trainer.close()
        with lock:
            if self.shared.stopped:
                return
            # Listed once decided: a results file saved meanwhile (by another lane) holds
            # only finished tasks, which --resume keeps; in the rubric's order, whichever
            # lane finished first.
            self.results.tasks.append(result)
            order = {tid: i for i, tid in enumerate(self.rubric.task_ids)}
            self.results.tasks.sort(key=lambda t: order.get(t.id, len(order)))
            self.progress.task_finished(result)
            self.save()

    @property
    def submission_timeout_s(self) -> float:
        return self.results.environment["limits"]["submission_timeout_s"]

    def _fail(self, result: TaskResult, kind: ErrorKind, reason: str) -> None:
        result.status, result.error_kind, result.reason = ERROR, kind, reason

    def grade(self, task: Task, result: TaskResult) -> None:
        """One task: import (once), check the budget, build, describe, check the structure,
        train under the budget, predict, and decide."""
        rubric, quick = self.rubric, self.options.quick
        if time.monotonic() > self.deadline:
            return self._fail(result, ErrorKind.TIMEOUT,
                              f"Not graded: the submission's time limit of "
                              f"{self.submission_timeout_s:.0f} s was used up.")
        with self.builders.hold() as builder:
            imported = builder.ensure()
            self._record_environment()
            if isinstance(imported, Ended) or not imported.get("ok"):
                reason, result.error = import_failure(imported, self.sub,
                                                      rubric.limits.import_timeout_s)
                self._fail(result, ErrorKind.IMPORT, reason)
                result.output_tail = builder.import_output
                builder.close()
                return
        with self.shared.lock:
            if not self.shared.noted:  # once per run: notes on the submission as a whole
                self.shared.noted = True
                self.results.notes += training_table_findings(imported.get("training"),
                                                              rubric) + \
                    submission_notes(self.sub, rubric, imported)
        if task.function not in imported["callables"]:
            return self._fail(result, ErrorKind.MISSING, missing_function_message(
                task, rubric, imported["callables"], self.sub))
        needed = needed_failed_import(self.sub, task, imported)
        if needed:
            return self._fail(result, ErrorKind.IMPORT, needed)
        training = imported.get("training")
        epochs, batch_size, found = training_settings(task, rubric, training)
        found += checks.budget_findings(task, epochs, batch_size, rubric.training.max_batch_size,
                                        "TRAINING" if training and task.id in training else
                                        "The rubric")
        result.epochs, result.batch_size = epochs, batch_size
        trainable = all(f.ok or f.severity != "error" for f in found)
        if quick:
            epochs = min(epochs, rubric.quick.epochs)
        if task.same_as is not None and task.same_as not in self.descriptions:
            desc = self._describe_only(rubric.task(task.same_as))
            if desc is not None:
                self.descriptions[task.same_as] = desc
        left = self.deadline - time.monotonic()
        limit = self.options.task_timeout_s or (rubric.quick.timeout_s if quick
                                                else task.timeout_s)
        timeout = min(limit, max(left, 1.0))
        why_limit = (f"what was left of the submission's time limit of "
                     f"{self.submission_timeout_s:.0f} s" if timeout < limit else
                     "the time limit for this task")
        self._started(task, epochs if trainable else 0)
        spe = self.options.steps_per_execution
        if quick:  # at least two calls into the backend: the estimate needs a steady one
            steps = math.ceil(self.results.data["n_train_used"] / batch_size)
            spe = min(spe, max(1, steps // 2))
        request = task_request(task, rubric, self.seed, train=trainable, epochs=epochs,
                               batch_size=batch_size, data=self.bundle,
                               steps_per_execution=spe,
                               recheck=not quick, validate=not quick,
                               dtype_policy=self.options.dtype_policy)
        result.findings = found

        def train_if(desc: dict) -> bool:
            self.descriptions[task.id] = result.description = desc
            result.params_total = desc.get("params_total")
            result.params_trainable = desc.get("params_trainable")
            result.findings += self._structure(task, desc, training)
            return all(f.ok or f.severity != "error" for f in result.findings)

        turn = self._build_and_train(task, request, timeout, train_if, result)
        described, reply = turn.described, turn.reply
        stage = "training" if described else "building the model"
        if described is None and isinstance(reply, dict) and reply.get("description") and \
                turn.child is self.trainer:
            self.descriptions[task.id] = reply["description"]
            result.findings += self._structure(task, reply["description"], training)
        if isinstance(reply, Ended):
            if reply.reason == "protocol":
                reason = f"{task.function}: the process running the submission {reply.message}."
            else:
                reason = f"{task.function}: {stage} {reply.message}" + {
                    "timeout": f" ({why_limit}; an endless loop, or a model far too large for "
                               f"the budget?)",
                    "memory": " (a model with far too many parameters, or data copied many "
                              "times?)"}.get(reply.reason, ".")
            self._fail(result, _ENDED_KIND.get(reply.reason, ErrorKind.CRASH), reason)
        else:
            apply_reply(result, reply, task=task, rubric=rubric, sub=self.sub, test=self.test,
                        quick=quick)
            if result.test_accuracy is not None:
                self._more_seeds(task, request, result, timeout)
        if not result.output_tail:
            result.output_tail = turn.output
        checks.decide(task, result, quick)

    def _started(self, task: Task, epochs: int) -> None:
        with self.shared.lock:
            self.progress.task_started(task, epochs)

    def _event(self, msg: dict) -> None:
        with self.shared.lock:
            self.progress.event(msg)

    def _record_environment(self) -> None:
        with self.shared.lock:
            self._record_environment_locked()

    def _record_environment_locked(self) -> None:
        """Once the first child has said hello: its device, versions and sandbox."""
        first = self.builders.first
        hello, env = first.hello, self.results.environment
        if hello is None or env.get("device"):
            return
        env.update(device=hello["device"], versions=hello["versions"],
                   determinism=hello["determinism"], network_blocked=hello["network_blocked"],
                   sandbox=first.sandbox_record(),
                   child_start_s=round(first.start_s, 2))
        if env["sandbox"]["kind"] == "none":
            self.results.notes.append(Finding(
                "sandbox", False, "Graded WITHOUT a sandbox: the student's code could "
                "read any file this user can read. " + env["sandbox"]["why"]
                + ". Install bubblewrap, or run on Linux 5.13+ (Landlock); `grader "
                "doctor` says what is missing.", severity="warning"))
        unused = unused_gpus(hello["device"])
        if unused:
            env["gpu_warning"] = unused
            self.results.notes.append(Finding("device", False, unused, severity="warning"))

    def _structure(self, task: Task, desc: dict, training) -> list[Finding]:
        rubric = self.rubric

        def settings(t: Task) -> dict:
            epochs, batch_size, _ = training_settings(t, rubric, training)
            return {"epochs": epochs, "batch_size": batch_size}

        other = rubric.task(task.same_as) if task.same_as else None
        found = checks.structure_findings(task, rubric, desc, _default_compile(desc, rubric),
                                          self.descriptions.get(task.same_as), settings(task),
                                          settings(other) if other else None)
        if other is not None and other.id in self.shared.claimed:
            found.append(Finding("custom_code", False, f"Compared with {other.function}'s model "
                                 f"as your own code describes it (its custom code cannot be "
                                 f"rebuilt by the grader): held for a TA.",
                                 severity=checks.REVIEW))
        return found

    def _more_seeds(self, task: Task, request: dict, result: TaskResult,
                    timeout: float) -> None:
        """Re-train with further seeds when asked, or when the first run is borderline.

        Every seed counts: one that ends in NaN, crashes, times out or cannot start before
        the submission's time limit is a failed run (0% in the mean, named in the reason),
        so an unstable model is not judged on its lucky seeds.  The curves and confusion
        matrix stay those of the first seed (``shown_seed``)."""
        rubric, y_test = self.rubric, self.test.y
        wanted = self.options.seeds
        band = rubric.fairness.borderline_band
        if task.threshold is not None and abs(result.test_accuracy - task.threshold) <= band:
            result.borderline = True
            wanted = max(wanted, rubric.fairness.borderline_seeds)
        result.shown_seed = request["seed"]
        result.runs = [{"seed": request["seed"], "test_accuracy": result.test_accuracy,
                        "train_s": result.timings.get("train_s"),
                        "epochs_run": result.epochs_run}]
        for i in range(1, wanted):
            seed = request["seed"] + i
            left = self.deadline - time.monotonic()
            if left < 1.0:
                result.runs.append({"seed": seed, "error": "not run: the submission's time "
                                                           "limit was used up"})
                continue
            self._started(task, request["epochs"])
            reply = self._again(task, {**request, "seed": seed}, min(timeout, left))
            if isinstance(reply, Ended):
                result.runs.append({"seed": seed, "error": reply.message})
                continue
            if reply.get("nan"):
                result.runs.append({"seed": seed, "error": f"the loss became NaN at epoch "
                                                           f"{reply['nan'].get('epoch')}"})
                continue
            preds, problem = read_predictions(reply, len(y_test), rubric.num_classes) \
                if reply.get("ok") else (None, (reply.get("error") or {}).get("message"))
            if problem:
                result.runs.append({"seed": seed, "error": problem})
                continue
            acc, _, _ = checks.accuracy_and_confusion(preds, y_test, rubric.num_classes)
            result.runs.append({"seed": seed, "test_accuracy": acc,
                                "train_s": (reply.get("timings") or {}).get("train_s"),
                                "epochs_run": reply.get("epochs_run")})
        accs = [r.get("test_accuracy", 0.0) for r in result.runs]
        result.test_accuracy = statistics.fmean(accs)
        result.test_accuracy_std = statistics.stdev(accs) if len(accs) > 1 else None


    def _build_and_train(self, task: Task, request: dict, timeout: float, train_if,
                         result: TaskResult | None = None) -> "Turn":
        """The builder builds and exports the model; the trainer rebuilds it from that
        configuration and trains it.  A configuration that cannot cross (custom code: the
        parent's check or the trainer's says so) is trained in the builder and held, or
        fails, as the rubric's ``custom_code`` says; ``result`` (None for a further seed)
        gets the finding that says why."""
        t_end = time.monotonic() + timeout
        with self.builders.hold() as builder:
            mark = builder.output_mark
            exported = builder.export(request, timeout)
            output = builder.output_tail(since=mark)
        if isinstance(exported, Ended) or not exported.get("ok"):
            return Turn(None, exported, builder, output)
        reasons = crossing_problems(exported)
        if not reasons:
            described, reply = self.trainer.run(to_trainer(request, exported),
                                                max(t_end - time.monotonic(), 1.0),
                                                self._event, train_if)
            if isinstance(reply, dict) and reply.get("cannot_rebuild"):
                reasons = [reply["cannot_rebuild"]]  # keras' own check, stricter than ours
            else:
                if isinstance(reply, dict):  # what the builder did: the report says it
                    reply = {**reply, **{k: exported[k] for k in
                                         ("builder_events", "builder_writes",
                                          "notebook_compile") if k in exported}}
                return Turn(described, reply, self.trainer, output)
        why = custom_code_message(task, exported, reasons)
        if self.rubric.fairness.custom_code == "fail":
            if result is not None:
                result.findings.append(Finding("custom_code", False, why + " The rubric fails "
                                               "such a model (custom_code = \"fail\")."))
                result.description = exported.get("description")
            return Turn(None, {**exported, "ev": "result"}, builder, output)
        with self.shared.lock:
            self.shared.claimed.add(task.id)
        if result is not None:
            result.findings.append(Finding(
                "custom_code", False, why + " It was trained in the process that runs your "
                "code, so its result rests on that code: a pass is held for a TA.",
                severity=checks.REVIEW))
        with self.builders.hold() as builder:
            mark = builder.output_mark
            if isinstance(builder.ensure(), Ended):
                return Turn(None, Ended("exited", "the submission could not be imported"),
                            builder, output)
            described, reply = builder.run(request, max(t_end - time.monotonic(), 1.0),
                                           self._event, train_if)
            if isinstance(reply, Ended):
                builder.close()
            output += builder.output_tail(since=mark)
        return Turn(described, reply, builder, output[-4000:])

    def _again(self, task: Task, request: dict, timeout: float) -> dict | Ended:
        """The task built and trained once more, from another seed: its builder runs again
        (what it builds may depend on the seed), and the model is trained where the first
        seed's was."""
        return self._build_and_train(task, request, timeout, lambda desc: True).reply

    def _describe_only(self, task: Task) -> dict | None:
        """The description of a model that another task is compared with, built (not
        trained) for that: the trainer's account of the rebuilt model, or None when it does
        not build.  A model that cannot cross is described by the builder: its own account,
        which holds the task compared with it (``_structure``)."""
        limit = self.rubric.limits.import_timeout_s
        request = task_request(task, self.rubric, self.seed, train=False,
                               dtype_policy=self.options.dtype_policy)
        with self.builders.hold() as builder:
            imported = builder.ensure()
            if isinstance(imported, Ended) or not imported.get("ok") or \
                    task.function not in imported["callables"]:
                return None
            exported = builder.export(request, limit)
        if isinstance(exported, Ended) or not exported.get("ok"):
            return None
        if crossing_problems(exported):
            with self.shared.lock:
                self.shared.claimed.add(task.id)
            return exported.get("description")
        _, reply = self.trainer.run(to_trainer(request, exported), limit, None,
                                    lambda desc: False)
        if isinstance(reply, dict) and reply.get("cannot_rebuild"):
            with self.shared.lock:
                self.shared.claimed.add(task.id)
            return exported.get("description")
        if isinstance(reply, Ended) or not reply.get("ok"):
            return None
        return reply.get("description")


class Turn(NamedTuple):
    """One task's exchange with the children: the ``described`` message (None when the
    model was not described before training), the reply or why it ended, the process
    that replied, and what the student's code printed meanwhile."""

    described: dict | None
    reply: dict | Ended
    child: object
    output: str


def crossing_problems(exported: dict) -> list[str]:
    """Why an exported model cannot be rebuilt by the trainer: empty when it can."""
    if exported.get("cannot_export"):
        return [exported["cannot_export"]]
    if not isinstance(exported.get("architecture"), dict):
        return ["no configuration was exported"]
    return architecture.problems(exported["architecture"]) + \
        architecture.problems(exported.get("compile_config") or {})


def custom_code_message(task: Task, exported: dict, reasons: list[str]) -> str:
    """Why the model cannot cross, naming its custom layers with the keras class each
    derives from (as the builder describes them: a name, not a verdict)."""
    layers = ((exported.get("description") or {}).get("layers") or [])
    custom = [f"`{l.get('class_name')}` (a subclass of {l.get('keras_class')})" for l in layers
              if l.get("custom") and l.get("keras_class") != l.get("class_name")][:5]
    named = f" Custom layers: {', '.join(custom)}." if custom else ""
    return (f"The model {task.function} returns cannot be rebuilt from its configuration: "
            f"{'; '.join(reasons[:3])}.{named} The grader trains plain keras models (keras' "
            f"own layers, losses and optimizers) in a process of its own.")


def to_trainer(request: dict, exported: dict) -> dict:
    """The trainer's request: the task's budget and data with the exported model."""
    return {**request, "architecture": exported["architecture"],
            "compile_config": exported.get("compile_config"),
            "seed_states": exported.get("seed_states") or {}}


def _default_compile(desc: dict, rubric: Rubric) -> dict:
    student = desc.get("compile") or {}
    if student.get("compiled"):
        return student
    return {"loss": {"name": rubric.training.loss, "from_logits": False}}
