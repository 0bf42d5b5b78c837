"""Q6 done wrong: besides adding Dropout, the filters and the dense head changed."""
import keras
from keras import layers

TRAINING = {"cnn": {"epochs": 1}, "cnn_dropout": {"epochs": 1}}


def build_cnn_model(input_shape=(32, 32, 3), num_classes=10):
    return keras.Sequential([keras.Input(shape=input_shape),
                             layers.Conv2D(16, 3, activation="relu"), layers.MaxPooling2D(),
                             layers.Flatten(), layers.Dense(num_classes, activation="softmax")])


def build_cnn_dropout_model(input_shape=(32, 32, 3), num_classes=10):
    return keras.Sequential([keras.Input(shape=input_shape),
                             layers.Conv2D(32, 3, activation="relu"), layers.MaxPooling2D(),
                             layers.Dropout(0.25), layers.Flatten(),
                             layers.Dense(64, activation="relu"),
                             layers.Dense(num_classes, activation="softmax")])
