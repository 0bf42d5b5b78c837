"""Probes what the sandbox leaves open beside files: capabilities, a pathname UNIX socket
(a database's, D-Bus, Docker's), the host's /dev/shm, and folders on the grader's
PYTHONPATH.  Prints what it reached; builds an honest model."""
import os
import socket

import keras
from keras import layers

SOCKET = "/tmp/grader-probe-unix.sock"
SHM = "/dev/shm/grader-probe-from-child"


def build_fc_model(input_shape=(32, 32, 3), num_classes=10):
    status = dict(line.split(":", 1) for line in open("/proc/self/status") if ":" in line)
    print("PROBE CapEff", status["CapEff"].strip(), "CapBnd", status["CapBnd"].strip())
    try:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(3)
        s.connect(SOCKET)
        print("PROBE unix-connected", s.recv(100).decode())
    except OSError as exc:
        print("PROBE unix-refused", type(exc).__name__)
    try:
        with open(SHM, "w") as f:
            f.write("x")
        print("PROBE shm-written")
    except OSError as exc:
        print("PROBE shm-refused", type(exc).__name__)
    print("PROBE pythonpath", os.environ.get("PYTHONPATH", ""))
    for folder in os.environ.get("GRADER_PROBE_DIRS", "/nonexistent").split(":") + \
            ["/tmp/grader-probe-pythonpath"]:
        try:
            print("PROBE bait", open(os.path.join(folder, "bait.txt")).read())
        except OSError as exc:
            print("PROBE bait-refused", type(exc).__name__)
    return keras.Sequential([keras.Input(shape=input_shape), layers.Flatten(),
                             layers.Dense(num_classes, activation="softmax")])
