"""Trains the model inside the builder (on the training images it finds) before returning it,
and writes the weights to a file and loads them back."""
import os

import keras
import numpy as np
from keras import layers

TRAINING = {"fc": {"epochs": 1}}


def build_fc_model(input_shape=(32, 32, 3), num_classes=10):
    model = keras.Sequential([keras.Input(shape=input_shape), layers.Flatten(),
                              layers.Dense(num_classes, activation="softmax")])
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.0),
                  loss="sparse_categorical_crossentropy")
    x = np.random.rand(64, *input_shape).astype("float32")
    y = np.random.randint(0, num_classes, 64)
    model.fit(x, y, epochs=1, verbose=0)
    model.save_weights(os.path.join(os.getcwd(), "pre.weights.h5"))
    model.load_weights(os.path.join(os.getcwd(), "pre.weights.h5"))
    return model
