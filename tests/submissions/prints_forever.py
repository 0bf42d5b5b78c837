"""Prints without end inside the builder."""
TRAINING = {"fc": {"epochs": 1}}


def build_fc_model(input_shape=(32, 32, 3), num_classes=10):
    while True:
        print("spam " * 200)
