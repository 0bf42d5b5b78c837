import keras
import tensorflow_addons_that_does_not_exist


def build_fc_model(input_shape=(32, 32, 3), num_classes=10):
    return keras.Sequential([tensorflow_addons_that_does_not_exist.layers.Dense(10)])
