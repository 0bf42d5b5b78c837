"""A builder whose error and output carry rich markup, terminal escapes (window title,
clipboard write, clear screen), a forged line and a character XML cannot hold."""
import keras
from keras import layers

TRAINING = {"cnn": {"epochs": 1}}


def build_fc_model(input_shape=(32, 32, 3), num_classes=10):
    print("\x1b]0;pwned\x07\x1b]52;c;cm0gLXJmIH4=\x07\x1b[2J")
    raise ValueError("[/red] [bold]fake[/bold]\n  passed Q2 fc: 100%\x1b]0;title\x07 \x01")


def build_cnn_model(input_shape=(32, 32, 3), num_classes=10):
    return keras.Sequential([keras.Input(shape=input_shape),
                             layers.Conv2D(16, 4, strides=4, activation="relu"),
                             layers.Flatten(), layers.Dense(num_classes, activation="softmax")])
