"""What crosses from the builder to the trainer: plain keras models and compile settings
rebuild as they were; custom code, code in disguise and data in a configuration do not."""
from __future__ import annotations

import json

import keras
import numpy as np
import pytest
from keras import layers

from grader import architecture
from grader.child.describe import INTEGER_LOSSES, ONE_HOT_LOSSES
from grader.child.rebuild import CannotRebuild, check_against_keras, rebuild_compile, \
    rebuild_model


def _roundtrip(model) -> dict:
    config = json.loads(model.to_json())
    assert architecture.problems(config) == []
    rebuilt = rebuild_model(config)
    assert type(rebuilt) is type(model)
    assert rebuilt.count_params() == model.count_params()
    assert [type(l) for l in rebuilt.layers] == [type(l) for l in model.layers]
    return config


def test_every_layer_the_lab_uses_crosses_in_a_sequential_model():
    _roundtrip(keras.Sequential([
        keras.Input((32, 32, 3)), layers.Rescaling(1.0), layers.RandomFlip("horizontal"),
        layers.RandomTranslation(0.1, 0.1), layers.RandomRotation(0.05), layers.RandomZoom(0.1),
        layers.RandomContrast(0.1), layers.GaussianNoise(0.01), layers.ZeroPadding2D(1),
        layers.Conv2D(8, 3, padding="same", kernel_regularizer=keras.regularizers.L2(1e-4),
                      kernel_constraint=keras.constraints.MaxNorm(3)),
        layers.BatchNormalization(), layers.ReLU(), layers.LeakyReLU(0.1), layers.ELU(),
        layers.SeparableConv2D(8, 3, padding="same"), layers.DepthwiseConv2D(3, padding="same"),
        layers.MaxPooling2D(), layers.AveragePooling2D(1), layers.SpatialDropout2D(0.1),
        layers.LayerNormalization(), layers.Activation("swish"), layers.Flatten(),
        layers.Dense(16, activation="gelu", kernel_initializer="he_normal"),
        layers.AlphaDropout(0.1), layers.Dropout(0.2), layers.Dense(10), layers.Softmax()]))


def test_a_functional_model_with_branches_crosses():
    inputs = keras.Input((32, 32, 3))
    x = layers.Conv2D(8, 3, padding="same", activation="relu")(inputs)
    y = layers.Conv2D(8, 1)(x)
    x = layers.Add()([x, y])
    x = layers.Concatenate()([x, layers.MaxPooling2D(1)(x)])
    x = layers.GlobalAveragePooling2D()(x)
    head = keras.Sequential([layers.Dense(10, activation="softmax")])  # a nested model
    _roundtrip(keras.Model(inputs, head(x)))


@pytest.mark.parametrize("optimizer", [
    keras.optimizers.Adam(keras.optimizers.schedules.ExponentialDecay(1e-3, 100, 0.9)),
    keras.optimizers.SGD(keras.optimizers.schedules.CosineDecay(0.1, 1000), momentum=0.9,
                         nesterov=True),
    keras.optimizers.RMSprop(keras.optimizers.schedules.PiecewiseConstantDecay([10], [1e-3,
                                                                                   1e-4])),
    keras.optimizers.AdamW(weight_decay=1e-4), "adam", "sgd"])
def test_optimizers_and_schedules_cross(optimizer):
    model = keras.Sequential([keras.Input((4,)), layers.Dense(3)])
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy")
    config = json.loads(json.dumps(model.get_compile_config()))
    rebuilt, _, _ = rebuild_compile(config)
    assert type(rebuilt) is type(model.optimizer)
    assert rebuilt.get_config() == model.optimizer.get_config()


@pytest.mark.parametrize("name", sorted(INTEGER_LOSSES | ONE_HOT_LOSSES))
def test_every_built_in_loss_crosses_by_name_function_and_class(name):
    forms = [name, getattr(keras.losses, name)]
    cls = "".join(p.capitalize() for p in name.split("_"))
    cls = {"KlDivergence": "KLDivergence", "LogCosh": "LogCosh"}.get(cls, cls)
    if isinstance(getattr(keras.losses, cls, None), type):
        forms.append(getattr(keras.losses, cls)())
    for loss in forms:
        model = keras.Sequential([keras.Input((4,)), layers.Dense(3)])
        model.compile(optimizer="adam", loss=loss)
        _, rebuilt, _ = rebuild_compile(json.loads(json.dumps(model.get_compile_config())))
        fn = getattr(rebuilt, "fn", rebuilt)
        assert rebuilt == name or getattr(fn, "__name__", None) == name or \
            type(rebuilt).__name__ == cls, (loss, rebuilt)


class Dense(layers.Conv2D):
    pass


def _refused(model_or_config) -> list[str]:
    config = model_or_config if isinstance(model_or_config, dict) else \
        json.loads(model_or_config.to_json())
    reasons = architecture.problems(config)
    with pytest.raises(CannotRebuild):
        check_against_keras(config)
    return reasons


def test_custom_classes_lambdas_and_data_do_not_cross():
    disguised = keras.Sequential([keras.Input((8, 8, 3)), Dense(4, 3), layers.Flatten()])
    assert "custom class `Dense`" in " ".join(_refused(disguised))
    lam = keras.Sequential([keras.Input((4,)), layers.Lambda(lambda x: x * 2)])
    assert any("Lambda" in r for r in _refused(lam))
    table = keras.initializers.Constant(np.zeros((100, 1), dtype="float32"))
    data = keras.Sequential([keras.Input((100,)), layers.Dense(1, kernel_initializer=table)])
    assert any("list of 100 numbers" in r for r in _refused(data))


def _units(n: int, numbers: int):
    """A model of ``n`` one-unit Dense layers, each kernel a Constant of ``numbers``
    numbers: every list within the limit."""
    inputs = keras.Input((numbers,))
    units = [layers.Dense(1, kernel_initializer=keras.initializers.Constant(
        np.full((numbers, 1), 0.5).tolist()))(inputs) for _ in range(n)]
    return keras.Model(inputs, layers.Concatenate()(units))


def test_data_split_into_small_lists_counts_in_all_shapes_aside():
    assert architecture.problems(json.loads(_units(4, 64).to_json())) == []  # 256 in all
    reasons = _refused(_units(5, 64))
    assert any("320 numbers in initializers" in r for r in reasons), reasons
    # Shapes and wiring are not data: a wide, deep model of built-in layers crosses.
    inputs = keras.Input((32, 32, 3))
    x = inputs
    for _ in range(60):
        x = layers.Conv2D(4, (3, 3), strides=(1, 1), padding="same")(x)
    _roundtrip(keras.Model(inputs, layers.Dense(10)(layers.Flatten()(x))))


@pytest.mark.parametrize("obj", [
    {"module": "keras.config", "class_name": "function",
     "config": "enable_unsafe_deserialization", "registered_name": "function"},
    {"module": "keras.utils", "class_name": "function", "config": "get_file",
     "registered_name": "function"},
    {"module": "builtins", "class_name": "function", "config": "eval",
     "registered_name": "function"},
    {"module": "keras.layers", "class_name": "TFSMLayer", "config": {}},
    {"module": "keras.src.utils.file_utils", "class_name": "File", "config": {}},
    {"module": "os", "class_name": "system", "config": "true"},
    {"class_name": "__bytes__", "config": {"value": "cHJpbnQoMSk="}},
])
def test_what_names_code_outside_keras_layers_does_not_cross(obj):
    config = json.loads(keras.Sequential([keras.Input((4,)), layers.Dense(3)]).to_json())
    config["config"]["layers"][1]["config"]["activation"] = obj
    with pytest.raises(CannotRebuild):
        check_against_keras(config)
