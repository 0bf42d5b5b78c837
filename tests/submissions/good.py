"""A correct submission with small models, so tests train in seconds."""
import keras
from keras import layers

TRAINING = {
    "fc": {"epochs": 3, "batch_size": 32},
    "cnn": {"epochs": 4, "batch_size": 32},
    "cnn_dropout": {"epochs": 4},
    "cnn_batchnorm": {"epochs": 2},
    "final": {"epochs": 4},
}


def build_fc_model(input_shape=(32, 32, 3), num_classes=10):
    return keras.Sequential([
        keras.Input(shape=input_shape),
        layers.Flatten(),
        layers.Dense(64, activation="relu"),
        layers.Dense(num_classes, activation="softmax"),
    ])


def _cnn(input_shape, num_classes, extra=()):
    stack = [keras.Input(shape=input_shape),
             # 4x4 patches with stride 4 match the synthetic data's blocks
             layers.Conv2D(16, 4, strides=4, activation="relu"), *extra,
             layers.Flatten(),
             layers.Dense(num_classes, activation="softmax")]
    return keras.Sequential(stack)


def build_cnn_model(input_shape=(32, 32, 3), num_classes=10):
    return _cnn(input_shape, num_classes)


def build_cnn_dropout_model(input_shape=(32, 32, 3), num_classes=10):
    return _cnn(input_shape, num_classes, extra=[layers.Dropout(0.2)])


def build_cnn_batchnorm_model(input_shape=(32, 32, 3), num_classes=10):
    return _cnn(input_shape, num_classes, extra=[layers.BatchNormalization()])


def build_final_model(input_shape=(32, 32, 3), num_classes=10):
    model = _cnn(input_shape, num_classes)
    model.compile(optimizer=keras.optimizers.Adam(2e-3), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model
