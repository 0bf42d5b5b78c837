"""Compiled with a learning-rate schedule and categorical cross-entropy from logits."""
import keras
from keras import layers

TRAINING = {"fc": {"epochs": 2}}


def build_fc_model(input_shape=(32, 32, 3), num_classes=10):
    model = keras.Sequential([keras.Input(shape=input_shape), layers.Flatten(),
                              layers.Dense(64, activation="relu"), layers.Dense(num_classes)])
    schedule = keras.optimizers.schedules.ExponentialDecay(2e-3, decay_steps=10, decay_rate=0.9)
    model.compile(optimizer=keras.optimizers.Adam(schedule),
                  loss=keras.losses.CategoricalCrossentropy(from_logits=True))
    return model
