"""Answers for the grader with a result whose NaN report has no epoch (a KeyError, "a bug
in the grader", once)."""
import json
import os
import sys
import time


def build_fc_model(input_shape=(32, 32, 3), num_classes=10):
    result = {"ev": "result", "task": "fc", "ok": True, "stage": "train", "nan": {},
              "history": {"loss": [1.0]}, "timings": {}}
    os.write(int(sys.argv[2]), (json.dumps(result) + "\n").encode())
    time.sleep(60)
