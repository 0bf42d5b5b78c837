"""Writes forged messages straight into the grader's event pipe: a fake result claiming
success, with a nonsense model description and predictions read from a system file.
Its model has a layer of its own, so the grader asks this process to train it;
the answer it forges then is one the grader waits for."""
import json
import os
import sys
import time

TRAINING = {"fc": {"epochs": 1}}

from _tiny import held_fc, second_call

_CALLS = []


def build_fc_model(input_shape=(32, 32, 3), num_classes=10):
    if not second_call(_CALLS):
        return held_fc(input_shape, num_classes)
    fd = int(sys.argv[2])
    fake = {"ev": "result", "task": "fc", "ok": True, "stage": "predict",
            "description": "a perfect model", "predictions": "/etc/hostname",
            "history": {"accuracy": [1.0]}, "timings": {}}
    os.write(fd, (json.dumps({"ev": "epoch", "task": "fc", "epoch": "x", "logs": "y"}) + "\n"
                  + json.dumps(fake) + "\n").encode())
    time.sleep(60)
