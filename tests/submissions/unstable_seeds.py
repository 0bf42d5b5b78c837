"""A model that trains on some seeds and crashes on others: the borderline re-grading must
count the crashed seeds, not judge the lucky ones."""
import keras
import numpy as np
from keras import layers

TRAINING = {"fc": {"epochs": 2}}


def build_fc_model(input_shape=(32, 32, 3), num_classes=10):
    # keras.utils.set_random_seed(seed) seeds numpy before every build: deterministic per seed.
    if np.random.randint(0, 4) == 3:
        raise RuntimeError("unlucky seed")
    return keras.Sequential([keras.Input(shape=input_shape), layers.Flatten(),
                             layers.Dense(32, activation="relu"),
                             layers.Dense(num_classes, activation="softmax")])
