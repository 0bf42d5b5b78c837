"""Allocates memory until something stops it."""
TRAINING = {"fc": {"epochs": 1}}


def build_fc_model(input_shape=(32, 32, 3), num_classes=10):
    hoard = []
    while True:
        hoard.append(b"x" * 100_000_000)
