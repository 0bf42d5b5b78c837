"""build_fc_model never returns; build_cnn_model is fine and must still be graded."""
import time

import keras
from keras import layers

TRAINING = {"cnn": {"epochs": 1}}


def build_fc_model(input_shape=(32, 32, 3), num_classes=10):
    while True:  # idles, so that the tests beside it keep the CPU
        time.sleep(0.05)


def build_cnn_model(input_shape=(32, 32, 3), num_classes=10):
    return keras.Sequential([keras.Input(shape=input_shape),
                             layers.Conv2D(16, 4, strides=4, activation="relu"),
                             layers.Flatten(), layers.Dense(num_classes, activation="softmax")])
