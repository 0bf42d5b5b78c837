"""build_cnn_model is misspelt; the other builders are fine."""
import keras
from keras import layers

TRAINING = {"fc": {"epochs": 1}}


def build_fc_model(input_shape=(32, 32, 3), num_classes=10):
    return keras.Sequential([keras.Input(shape=input_shape), layers.Flatten(),
                             layers.Dense(num_classes, activation="softmax")])


def build_cnn_modle(input_shape=(32, 32, 3), num_classes=10):
    return keras.Sequential([keras.Input(shape=input_shape), layers.Conv2D(4, 3),
                             layers.Flatten(), layers.Dense(num_classes, activation="softmax")])
