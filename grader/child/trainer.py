"""The trainer: rebuilds each model from the configuration the builder exported, and
trains, times and predicts it.  It never imports the submission: nothing in this process
is student code, so budget, timing, history and predictions are the grader's own.

A model is rebuilt only from keras' own classes (``rebuild.py``), in safe mode; its
weights are drawn from the task's seed; it is compiled from the student's compile
settings, rebuilt the same way, or the rubric's defaults.
"""
from __future__ import annotations

import sys

from .task import TaskRunner, clean_message


class Trainer(TaskRunner):
    def handlers(self) -> dict:
        return {"task": self.run_task}

    def error(self, exc: BaseException) -> dict:
        return {"type": type(exc).__name__, "message": clean_message(str(exc)), "frames": []}

    def make_model(self, req: dict, out: dict):
        """The exported architecture rebuilt and compiled as the student compiled it.

        The builder's process drew a model's initial weights once before the grader
        re-initialised them (``task.reinitialise``); rebuilding draws them once here, so a
        seed gives the same weights, and the same training, as when the builder trained."""
        from .rebuild import rebuild_compile, rebuild_model, restore_seed_states

        out["stage"] = "rebuild"
        try:
            model = rebuild_model(req["architecture"])
            restore_seed_states(model, req.get("seed_states"))
            compiled = rebuild_compile(req.get("compile_config"))
        except Exception as exc:  # refused, or keras could not rebuild what it wrote
            out["cannot_rebuild"] = (f"the grader could not rebuild it from keras' own "
                                     f"classes ({type(exc).__name__}: "
                                     f"{clean_message(str(exc)).splitlines()[0][:300]})"
                                     if str(exc) else type(exc).__name__)
            raise
        if compiled is not None:
            optimizer, loss, jit = compiled
            model.compile(optimizer=optimizer, loss=loss, jit_compile=jit)
        return model


if __name__ == "__main__":
    from .start import main
    main(sys.argv, Trainer)
