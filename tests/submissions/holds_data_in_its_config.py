"""Data in the architecture: a Constant initializer that holds 2,048 numbers (a lookup
table could be rebuilt out of built-in layers from such constants)."""
import keras
import numpy as np
from keras import layers

TRAINING = {"fc": {"epochs": 1}}


def build_fc_model(input_shape=(32, 32, 3), num_classes=10):
    table = np.arange(2048, dtype="float32").reshape(2048, 1) / 2048.0
    return keras.Sequential([
        keras.Input(shape=input_shape), layers.Flatten(),
        layers.Dense(2048, activation="relu"),
        layers.Dense(1, trainable=False, kernel_initializer=keras.initializers.Constant(table)),
        layers.Dense(num_classes, activation="softmax"),
    ])
