"""Q6 with the same layers plus Dropout, but trained differently: another optimizer and
learning rate, and more epochs with a larger batch."""
import keras
from keras import layers

TRAINING = {"cnn": {"epochs": 1, "batch_size": 32},
            "cnn_dropout": {"epochs": 2, "batch_size": 64}}


def _cnn(input_shape, num_classes, extra=()):
    return keras.Sequential([keras.Input(shape=input_shape),
                             layers.Conv2D(8, 4, strides=4, activation="relu"), *extra,
                             layers.Flatten(), layers.Dense(num_classes, activation="softmax")])


def build_cnn_model(input_shape=(32, 32, 3), num_classes=10):
    return _cnn(input_shape, num_classes)


def build_cnn_dropout_model(input_shape=(32, 32, 3), num_classes=10):
    model = _cnn(input_shape, num_classes, [layers.Dropout(0.3)])
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.05),
                  loss="sparse_categorical_crossentropy")
    return model
