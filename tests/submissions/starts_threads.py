"""Starts threads that sleep until something stops it: processes and threads had no limit."""
import threading
import time

TRAINING = {"fc": {"epochs": 1}}


def build_fc_model(input_shape=(32, 32, 3), num_classes=10):
    started = 0
    while started < 20_000:
        threading.Thread(target=time.sleep, args=(600,), daemon=True).start()
        started += 1
    time.sleep(600)
