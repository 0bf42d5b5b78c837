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


class Held(layers.Layer):
    """A layer of the submission's own: a model with it cannot cross to the grader's
    trainer, so the process that runs the submission is asked to train it (and the task is
    held).  The hostile fixtures use it to be asked for a result they then forge."""

    def call(self, x):
        return x


def second_call(calls: list) -> bool:
    """True from the second call of a builder on: the first builds the model to export,
    the next builds it to train it where it was built (a model that cannot cross)."""
    calls.append(1)
    return len(calls) > 1


def held_fc(input_shape=(32, 32, 3), num_classes=10):
    return keras.Sequential([keras.Input(shape=input_shape), Held(), layers.Flatten(),
                             layers.Dense(num_classes, activation="softmax")])
