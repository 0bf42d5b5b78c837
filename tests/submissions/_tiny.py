"""Shared by the hostile fixtures: a small FC model that cannot learn (zero learning rate),
so any accuracy above chance would have to come from cheating."""
import keras
from keras import layers


def frozen_fc(input_shape=(32, 32, 3), num_classes=10):
    model = keras.Sequential([keras.Input(shape=input_shape), layers.Flatten(),
                              layers.Dense(num_classes, activation="softmax")])
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.0),
                  loss="sparse_categorical_crossentropy")
    return model
