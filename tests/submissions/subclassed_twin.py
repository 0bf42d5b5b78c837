"""good.py's dropout CNN in a Sequential subclass of its own: it cannot cross to the
trainer, so it is trained where it is built, as every model once was."""
import keras
from keras import layers

TRAINING = {"cnn": {"epochs": 4, "batch_size": 32}, "cnn_dropout": {"epochs": 4}}


class Mine(keras.Sequential):
    pass


def build_cnn_dropout_model(input_shape=(32, 32, 3), num_classes=10):
    extra = [layers.Dropout(0.2)]
    return Mine([keras.Input(shape=input_shape),
                 layers.Conv2D(16, 4, strides=4, activation="relu"), *extra,
                 layers.Flatten(), layers.Dense(num_classes, activation="softmax")])


def build_cnn_model(input_shape=(32, 32, 3), num_classes=10):
    """The plain CNN the twin is compared with (Q6: the CNN plus Dropout)."""
    return keras.Sequential([keras.Input(shape=input_shape),
                             layers.Conv2D(16, 4, strides=4, activation="relu"),
                             layers.Flatten(), layers.Dense(num_classes, activation="softmax")])
