"""Returns the layers, not a model."""
from keras import layers


def build_fc_model(input_shape=(32, 32, 3), num_classes=10):
    return [layers.Flatten(), layers.Dense(num_classes, activation="softmax")]
