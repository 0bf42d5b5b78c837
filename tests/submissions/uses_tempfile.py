"""An honest builder that saves its model in a temporary folder first, as students do to
check that it saves: tempfile and keras' own folder work in the grader's builder."""
import os
import tempfile

import keras
from keras import layers

TRAINING = {"fc": {"epochs": 1}}


def build_fc_model(input_shape=(32, 32, 3), num_classes=10):
    model = keras.Sequential([keras.Input(shape=input_shape), layers.Flatten(),
                              layers.Dense(32, activation="relu"),
                              layers.Dense(num_classes, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    with tempfile.TemporaryDirectory() as folder:
        model.save(os.path.join(folder, "check.keras"))
    os.makedirs(os.path.join(keras.src.backend.config.keras_home(), "models"), exist_ok=True)
    return model
