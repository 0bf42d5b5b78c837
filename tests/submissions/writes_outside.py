"""Writes a file outside its working directory while building."""
import os

from _tiny import frozen_fc

TRAINING = {"fc": {"epochs": 1}}


def build_fc_model(input_shape=(32, 32, 3), num_classes=10):
    target = os.environ.get("ESCAPE_TARGET", "/tmp/grader-escape-test.txt")
    with open(target, "w") as f:
        f.write("was here")
    return frozen_fc(input_shape, num_classes)
