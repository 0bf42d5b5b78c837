"""Starts a process in its own session that would outlive the grader's child."""
import subprocess

from _tiny import frozen_fc

TRAINING = {"fc": {"epochs": 1}}


def build_fc_model(input_shape=(32, 32, 3), num_classes=10):
    subprocess.Popen(["sleep", "987654"], start_new_session=True)
    return frozen_fc(input_shape, num_classes)
