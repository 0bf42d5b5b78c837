"""A plain FC model for the real-data smoke test: two epochs at batch 128."""
import keras
from keras import layers

TRAINING = {"fc": {"epochs": 2, "batch_size": 128}}


def build_fc_model(input_shape=(32, 32, 3), num_classes=10):
    return keras.Sequential([keras.Input(shape=input_shape), layers.Flatten(),
                             layers.Dense(256, activation="relu"),
                             layers.Dense(num_classes, activation="softmax")])
