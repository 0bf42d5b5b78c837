"""A learning rate so high that the loss diverges to NaN."""
import keras
from keras import layers

TRAINING = {"fc": {"epochs": 3}}


def build_fc_model(input_shape=(32, 32, 3), num_classes=10):
    model = keras.Sequential([keras.Input(shape=input_shape), layers.Flatten(),
                              layers.Dense(256, activation="relu"),
                              layers.Dense(num_classes)])
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=1e12),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model
