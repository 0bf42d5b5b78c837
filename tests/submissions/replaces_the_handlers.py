"""A forged result: replaces the process's task and export handlers, claims its model
cannot be exported (so that it is trained "here"), and answers every task with a made-up
description, a 20-epoch history, a training time and predictions it wrote itself.
Nothing is built or trained."""
import json
import os
import sys

import numpy as np

TRAINING = {"fc": {"epochs": 1}}
_FAKE_DESC = {"class_name": "Sequential", "input_shape": [None, 32, 32, 3],
              "output_shape": [None, 10], "params_total": 1000, "params_trainable": 1000,
              "params_label_capacity": 0, "output_activation": "softmax",
              "output_layer": "Dense", "layers": [
                  {"index": 0, "class_name": "Flatten", "keras_class": "Flatten",
                   "custom": False, "named_like_keras": False, "name": "flatten", "config": {},
                   "output_shape": [None, 3072], "params": 0, "activation": None},
                  {"index": 1, "class_name": "Dense", "keras_class": "Dense", "custom": False,
                   "named_like_keras": False, "name": "dense", "config": {"units": 10},
                   "output_shape": [None, 10], "params": 30730, "activation": "softmax"}],
              "compile": {"compiled": False}}


def _patch():
    worker = sys.modules.get("__main__")
    fd = int(sys.argv[2])

    def send(msg):
        os.write(fd, (json.dumps(msg) + "\n").encode())

    def export(self, req):
        send({"ev": "exported", "task": req["task"], "ok": True, "stage": "export",
              "timings": {}, "description": _FAKE_DESC,
              "cannot_export": "keras could not write its configuration"})

    def run_task(self, req):
        preds = np.full((100_000, 10), 0.1, dtype="float32")
        path = os.path.join(os.getcwd(), f"predictions-{req['task']}.npy")
        np.save(path, preds[:300])
        if req.get("train", True):
            send({"ev": "described", "task": req["task"], "description": _FAKE_DESC})
            self.next_command()
        send({"ev": "result", "task": req["task"], "ok": True, "stage": "predict",
              "description": _FAKE_DESC, "history": {"accuracy": [0.99] * 20,
                                                     "val_accuracy": [0.99] * 20},
              "epochs_run": 20, "timings": {"train_s": 1.0}, "predictions": path})

    import gc
    for cls in vars(worker).values():
        if isinstance(cls, type) and hasattr(cls, "run_task"):
            cls.run_task, cls.export = run_task, export
    for obj in gc.get_objects():  # the command loop's table of handlers, bound already
        if isinstance(obj, dict) and {"export", "task"} <= set(obj) and callable(obj["task"]):
            me = obj["task"].__self__
            obj["export"] = lambda req: export(me, req)
            obj["task"] = lambda req: run_task(me, req)


class _Patched:  # a class body runs when the file is imported (a bare call would not)
    _patch()


def build_fc_model(input_shape=(32, 32, 3), num_classes=10):
    raise RuntimeError("never called: the handlers answer for it")
