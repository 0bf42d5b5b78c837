"""sys.exit() inside a builder."""
import sys


def build_fc_model(input_shape=(32, 32, 3), num_classes=10):
    sys.exit(1)
