"""Tries to open a connection to a port on this machine that the test listens on."""
import socket

from _tiny import frozen_fc

TRAINING = {"fc": {"epochs": 1}}
PORT = 47123


def build_fc_model(input_shape=(32, 32, 3), num_classes=10):
    try:
        with socket.create_connection(("127.0.0.1", PORT), timeout=3) as s:
            s.sendall(b"leak")
    except OSError as exc:
        print(f"connection failed: {exc}")
    return frozen_fc(input_shape, num_classes)
