"""Rebuild a model and its compile settings from the configuration the builder exported,
in the trainer, which never imports the submission.

The configuration passes ``grader.architecture.problems`` (pure JSON) and then the check
here against keras itself: every class it names is one of keras' public classes of the
kind that belongs there, every function one of keras' public activations, losses or
metrics.  Only then does keras deserialize it, in safe mode, with no custom objects.
"""
from __future__ import annotations

import copy

from .. import architecture


class CannotRebuild(ValueError):
    """The configuration names something the trainer does not rebuild."""


def _public_classes() -> dict[str, type]:
    """Class name -> class, for every public keras class a model or compile config may name."""
    import keras

    bases = (keras.layers.Layer, keras.initializers.Initializer, keras.regularizers.Regularizer,
             keras.constraints.Constraint, keras.optimizers.Optimizer,
             keras.optimizers.schedules.LearningRateSchedule, keras.losses.Loss,
             keras.metrics.Metric, keras.DTypePolicy)
    out: dict[str, type] = {}
    for ns in (keras, keras.layers, keras.initializers, keras.regularizers, keras.constraints,
               keras.optimizers, keras.optimizers.schedules, keras.losses, keras.metrics,
               keras.dtype_policies, keras.models):
        for name in dir(ns):
            obj = getattr(ns, name, None)
            if isinstance(obj, type) and issubclass(obj, bases) and \
                    name not in architecture.REFUSED_CLASSES:
                out.setdefault(name, obj)
    from keras.src.models.functional import Functional
    out["Functional"] = Functional
    return out


def _public_functions() -> set[str]:
    import keras

    names = set()
    for part in architecture.FUNCTION_MODULES:
        ns = getattr(keras, part)
        names |= {n for n in dir(ns) if not n.startswith("_") and callable(getattr(ns, n))
                  and not isinstance(getattr(ns, n), type)}
    return names - {"get", "serialize", "deserialize"}


def check_against_keras(config) -> None:
    """Raise ``CannotRebuild`` unless every object in ``config`` is keras' own."""
    reasons = architecture.problems(config)
    if reasons:
        raise CannotRebuild("; ".join(reasons))
    classes, functions = _public_classes(), _public_functions()

    def visit(value):
        if isinstance(value, list):
            for v in value:
                visit(v)
        elif isinstance(value, dict):
            name = value.get("class_name")
            if isinstance(name, str) and name not in architecture.SPECIAL_OBJECTS:
                if name == "function":
                    if value.get("config") not in functions:
                        raise CannotRebuild(f"{value.get('config')!r} is not one of keras' "
                                            f"activations, losses or metrics")
                elif name not in classes:
                    raise CannotRebuild(f"`{name}` is not one of keras' public classes")
            for v in value.values():
                visit(v)

    visit(config)


def rebuild_model(config: dict):
    """A fresh keras model from an exported architecture (its weights drawn from its
    initializers under the seed already set)."""
    import keras

    check_against_keras(config)
    config = copy.deepcopy(config)
    config.pop("compile_config", None)  # compiled separately, from the checked compile config
    model = keras.saving.deserialize_keras_object(config, safe_mode=True)
    if not isinstance(model, keras.Model):
        raise CannotRebuild(f"the configuration rebuilds a {type(model).__name__}, not a "
                            f"keras.Model")
    return model


def rebuild_compile(config: dict | None) -> tuple | None:
    """(optimizer, loss, jit_compile) from an exported compile config, or None when the
    model was not compiled."""
    import keras

    if not config:
        return None
    check_against_keras(config)
    optimizer = config.get("optimizer")
    loss = config.get("loss")
    if loss is None:
        return None
    optimizer = keras.optimizers.get(optimizer) if isinstance(optimizer, str) else \
        keras.saving.deserialize_keras_object(optimizer, safe_mode=True)
    if not isinstance(loss, str):
        loss = keras.saving.deserialize_keras_object(loss, safe_mode=True)
        if not (isinstance(loss, keras.losses.Loss)
                or str(getattr(loss, "__module__", "")).startswith("keras.")):
            raise CannotRebuild("the loss is not one of keras' own")
    jit = config.get("jit_compile", "auto")
    return optimizer, loss, jit if isinstance(jit, bool) or jit == "auto" else "auto"


def restore_seed_states(model, states) -> None:
    """Start each random layer's stream where the builder's copy started it
    (``worker.seed_states``); a layer the states do not name keeps its own."""
    import numpy as np

    if not isinstance(states, dict):
        return
    for layer in model._flatten_layers(include_self=False, recursive=True):
        for generator, state in zip(getattr(layer, "_seed_generators", None) or [],
                                    states.get(layer.name) or []):
            value = np.asarray(state, dtype="int64")
            if value.shape == tuple(generator.state.shape):
                generator.state.assign(value.astype(generator.state.dtype))
