"""Q6 with no Q4: build_cnn_model is broken, so "the CNN plus Dropout" cannot be checked."""
import keras
from keras import layers

TRAINING = {"cnn_dropout": {"epochs": 1}}


def build_cnn_model(input_shape=(32, 32, 3), num_classes=10):
    raise NotImplementedError("TODO: Q4")


def build_cnn_dropout_model(input_shape=(32, 32, 3), num_classes=10):
    return keras.Sequential([keras.Input(shape=input_shape),
                             layers.Conv2D(8, 4, strides=4, activation="relu"),
                             layers.Dropout(0.2), layers.Flatten(),
                             layers.Dense(num_classes, activation="softmax")])
