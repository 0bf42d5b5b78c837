"""Writes forged messages straight into the grader's event pipe: a fake result claiming
success, with a nonsense model description and predictions read from a system file."""
import json
import os
import sys
import time

TRAINING = {"fc": {"epochs": 1}}


def build_fc_model(input_shape=(32, 32, 3), num_classes=10):
    fd = int(sys.argv[2])
    fake = {"ev": "result", "task": "fc", "ok": True, "stage": "predict",
            "description": "a perfect model", "predictions": "/etc/hostname",
            "history": {"accuracy": [1.0]}, "timings": {}}
    os.write(fd, (json.dumps({"ev": "epoch", "task": "fc", "epoch": "x", "logs": "y"}) + "\n"
                  + json.dumps(fake) + "\n").encode())
    time.sleep(60)
