"""Asks for more epochs than the budget allows, and misspells a key."""
import keras
from keras import layers

TRAINING = {"fc": {"epochs": 50, "batchsize": 64}, "fully_connected": {"epochs": 1}}


def build_fc_model(input_shape=(32, 32, 3), num_classes=10):
    return keras.Sequential([keras.Input(shape=input_shape), layers.Flatten(),
                             layers.Dense(num_classes, activation="softmax")])
