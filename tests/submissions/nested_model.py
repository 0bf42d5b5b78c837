"""Nested models: a functional model whose head is a Sequential ending in softmax, and a
custom layer whose get_config raises. Both are fine models and must be graded as such (the
custom layer's model is trained where it is built, and held for a TA)."""
import keras
from keras import layers

TRAINING = {"fc": {"epochs": 3}}


class Scale(layers.Layer):
    """A custom layer that cannot be serialised."""

    def call(self, x):
        return x * 1.0

    def get_config(self):
        raise NotImplementedError("no config")


def build_fc_model(input_shape=(32, 32, 3), num_classes=10):
    inp = keras.Input(shape=input_shape)
    features = keras.Sequential([layers.Flatten(), layers.Dense(64, activation="relu")],
                                name="features")
    head = keras.Sequential([Scale(), layers.Dense(num_classes, activation="softmax")],
                            name="head")
    return keras.Model(inp, head(features(inp)))
