"""Answers for the grader with a result whose NaN report has no epoch (a KeyError, "a bug
in the grader", once).
Its model has a layer of its own, so the grader asks this process to train it;
the answer it forges then is one the grader waits for."""
import json
import os
import sys
import time

from _tiny import held_fc, second_call

_CALLS = []


def build_fc_model(input_shape=(32, 32, 3), num_classes=10):
    if not second_call(_CALLS):
        return held_fc(input_shape, num_classes)
    result = {"ev": "result", "task": "fc", "ok": True, "stage": "train", "nan": {},
              "history": {"loss": [1.0]}, "timings": {}}
    os.write(int(sys.argv[2]), (json.dumps(result) + "\n").encode())
    time.sleep(60)
