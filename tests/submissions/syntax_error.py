import keras


def build_fc_model(input_shape=(32, 32, 3), num_classes=10)
    return keras.Sequential()
