"""Writes a line of 100,000 "[" (a RecursionError in the parser: every task "a bug in the
grader", once) and 20,000 progress messages (20,000 console lines, once) on the grader's
event pipe, then builds an honest model."""
import json
import os
import sys

import keras
from keras import layers

TRAINING = {"fc": {"epochs": 2}}


def build_fc_model(input_shape=(32, 32, 3), num_classes=10):
    fd = int(sys.argv[2])
    os.write(fd, b"[" * 100_000 + b"\n")
    flood = "".join(json.dumps({"ev": "epoch", "task": "fc", "epoch": i % 3 + 1, "epochs": 2,
                                "logs": {"accuracy": 0.99}}) + "\n" for i in range(20_000))
    os.write(fd, flood.encode())
    return keras.Sequential([keras.Input(shape=input_shape), layers.Flatten(),
                             layers.Dense(64, activation="relu"),
                             layers.Dense(num_classes, activation="softmax")])
