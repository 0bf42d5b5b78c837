"""Describe a built keras model as plain data: layers, configs, shapes, parameters, compile settings.

Runs in the child.  Everything the verdict rests on is decided later, in the
grader's process, from this description.
"""
from __future__ import annotations

import math

ACTIVATION_LAYERS = {"Softmax": "softmax", "ReLU": "relu", "LeakyReLU": "leaky_relu",
                     "ELU": "elu", "PReLU": "prelu"}
# The label encoding of every keras built-in loss, by the name of its function (the
# class forms wrap these, and keras.losses.get resolves aliases such as "mse" to them).
# Elementwise losses compare the target with the prediction, so they need one-hot targets
# of the prediction's shape; the sparse ones take class indices.  A test checks this
# table against keras itself.
INTEGER_LOSSES = {"sparse_categorical_crossentropy", "categorical_generalized_cross_entropy"}
ONE_HOT_LOSSES = {"categorical_crossentropy", "categorical_focal_crossentropy",
                  "categorical_hinge", "kl_divergence", "binary_crossentropy",
                  "binary_focal_crossentropy", "cosine_similarity", "dice", "hinge", "huber",
                  "log_cosh", "mean_absolute_error", "mean_absolute_percentage_error",
                  "mean_squared_error", "mean_squared_logarithmic_error", "poisson",
                  "squared_hinge", "tversky"}
# Losses over sequences (ctc) or embeddings (circle), not one class score per image.
UNSUPPORTED_LOSSES = {"ctc", "circle"}


def jsonable(value, depth: int = 0):
    """A JSON-safe copy of a keras config (tuples to lists, objects to their repr)."""
    if depth > 20:
        return repr(value)
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if isinstance(value, dict):
        return {str(k): jsonable(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v, depth + 1) for v in value]
    if hasattr(value, "item") and getattr(value, "shape", None) == ():
        return jsonable(value.item(), depth + 1)
    return repr(value)


def flat_layers(model):
    """Leaf layers in order, looking inside nested models; input layers left out."""
    out = []
    for layer in getattr(model, "layers", []):
        if type(layer).__name__ == "InputLayer":
            continue
        if hasattr(layer, "layers") and layer.layers:
            out.extend(flat_layers(layer))
        else:
            out.append(layer)
    return out


def _shape(x):
    try:
        return [None if d is None else int(d) for d in tuple(x)]
    except TypeError:
        return None


def _layer_output_shape(layer):
    try:
        return _shape(layer.output.shape)
    except Exception:  # a layer never called symbolically (subclassed models) has no output
        return None


def _activation_of(layer) -> str | None:
    name = type(layer).__name__
    if name in ACTIVATION_LAYERS:
        return ACTIVATION_LAYERS[name]
    try:
        cfg = layer.get_config()
    except Exception:
        return None
    act = cfg.get("activation")
    if isinstance(act, dict):  # a serialized activation object
        act = act.get("config", {}).get("name") or act.get("class_name")
    if act is None and name != "Activation":
        return "linear" if hasattr(layer, "kernel") else None
    return str(act) if act is not None else None


def output_layer(model, depth: int = 0):
    """The layer that produces the model's output, looking inside nested models
    (``Model(inp, head(features(inp)))`` where ``head`` is a Sequential ending in softmax)."""
    try:
        op = model.outputs[0]._keras_history.operation
    except Exception:
        layers = flat_layers(model)
        op = layers[-1] if layers else None
    if op is not None and op is not model and depth < 20 and getattr(op, "layers", None):
        return output_layer(op, depth + 1)
    return op


def _canonical_loss_name(loss) -> str | None:
    """The keras function name behind a built-in loss given by name, function or object."""
    fn = loss
    if isinstance(loss, str):
        try:
            import keras
            fn = keras.losses.get(loss)
        except Exception:  # not a keras identifier: keras will say so at compile time
            return None
    fn = getattr(fn, "fn", fn)  # LossFunctionWrapper (the class forms) wraps the function
    module = getattr(fn, "__module__", "") or ""
    name = getattr(fn, "__name__", None)
    if name and module.startswith("keras."):
        return name
    return None


def describe_loss(loss) -> dict:
    """Name, from_logits and label encoding of whatever the student passed as ``loss``.

    ``encoding`` is "integer" or "one_hot" for a keras built-in, "unsupported" for one that
    cannot take one label per image, and "probe" for a custom loss, which the child then
    decides on one batch (``training.probe_encoding``)."""
    if loss is None:
        return {"name": None, "from_logits": False, "one_hot": False, "encoding": "integer"}
    if isinstance(loss, str):
        name, from_logits = loss, False
    elif hasattr(loss, "get_config"):
        try:
            cfg = loss.get_config() or {}
        except Exception:  # a custom Loss without a usable config
            cfg = {}
        fn = getattr(loss, "fn", None)
        name = getattr(fn, "__name__", None) or type(loss).__name__
        from_logits = bool(cfg.get("from_logits", False))
    else:
        name, from_logits = getattr(loss, "__name__", repr(loss)), False
    canonical = _canonical_loss_name(loss)
    encoding = ("integer" if canonical in INTEGER_LOSSES else
                "one_hot" if canonical in ONE_HOT_LOSSES else
                "unsupported" if canonical in UNSUPPORTED_LOSSES else "probe")
    return {"name": name, "from_logits": from_logits, "one_hot": encoding == "one_hot",
            "encoding": encoding}


def describe_optimizer(opt) -> dict | None:
    if opt is None:
        return None
    info = {"name": type(opt).__name__}
    try:
        lr = opt.learning_rate
        info["learning_rate"] = float(lr) if not callable(lr) else None
    except Exception:
        info["learning_rate"] = None
    sched = getattr(opt, "_learning_rate", None)
    if sched is not None and hasattr(sched, "get_config") and type(sched).__name__ != "Variable":
        info["schedule"] = type(sched).__name__
    return info


# The running statistics keras' own normalisation layers keep: not trained, but updated
# from each batch and reset with the model, so they cannot hold a label per test image.
_RUNNING_STATISTICS = {"BatchNormalization": ("moving_mean", "moving_variance")}


def label_capacity(model) -> int:
    """How many non-trainable numbers could carry data the training did not put there:
    every non-trainable weight but keras' own running statistics (an honest VGG-style
    model keeps thousands of BatchNormalization statistics)."""
    statistics = 0
    for layer in flat_layers(model):
        names = _RUNNING_STATISTICS.get(type(layer).__name__)
        if names and type(layer).__module__.startswith("keras."):
            statistics += sum(int(math.prod(w.shape)) for w in layer.non_trainable_weights
                              if w.name.split("/")[-1] in names)
    frozen = sum(int(math.prod(w.shape)) for w in model.non_trainable_weights)
    return max(frozen - statistics, 0)


def keras_class(layer) -> tuple[str, bool, bool]:
    """The keras built-in class a layer is, or derives from (``Conv2D`` for a student's
    ``class Dense(Conv2D)``); whether its own class is someone else's code; and whether
    that class takes the name of one of keras' layers."""
    import keras

    own = type(layer)
    custom = not own.__module__.startswith("keras.")
    named_like_keras = custom and isinstance(getattr(keras.layers, own.__name__, None), type)
    for cls in own.__mro__:
        if cls.__module__.startswith("keras.") and not cls.__name__.startswith("_"):
            return cls.__name__, custom, named_like_keras
    return own.__name__, custom, named_like_keras


def describe_model(model) -> dict:
    layers = []
    for i, layer in enumerate(flat_layers(model)):
        try:
            config = layer.get_config()
        except Exception:  # a custom layer without get_config is still a layer
            config = {}
        try:
            params = int(layer.count_params())
        except Exception:
            params = 0
        builtin, custom, named_like_keras = keras_class(layer)
        layers.append({"index": i, "class_name": type(layer).__name__, "keras_class": builtin,
                       "custom": custom, "named_like_keras": named_like_keras,
                       "name": layer.name,
                       "config": jsonable(config), "output_shape": _layer_output_shape(layer),
                       "params": params, "activation": _activation_of(layer)})
    out_layer = output_layer(model)
    trainable = sum(int(math.prod(w.shape)) for w in model.trainable_weights)
    return {
        "class_name": type(model).__name__,
        "input_shape": _shape(model.inputs[0].shape) if getattr(model, "inputs", None) else None,
        "output_shape": _shape(model.outputs[0].shape) if getattr(model, "outputs", None) else None,
        "params_total": int(model.count_params()),
        "params_trainable": int(trainable),
        "params_label_capacity": label_capacity(model),
        "output_activation": _activation_of(out_layer) if out_layer is not None else None,
        "output_layer": type(out_layer).__name__ if out_layer is not None else None,
        "layers": layers,
    }


def is_compiled(model) -> bool:
    """The model was compiled with a loss (by its builder, or a notebook's compile call)."""
    return bool(getattr(model, "compiled", False)) and getattr(model, "loss", None) is not None


def describe_compile(model, default_optimizer: str | None = None,
                     default_loss: str | None = None) -> dict:
    """The student's own compile settings, as the builder returned the model; for an
    uncompiled model, also what the grader's defaults amount to (``default``)."""
    compiled = is_compiled(model)
    out = {"compiled": compiled,
           "optimizer": describe_optimizer(getattr(model, "optimizer", None)) if compiled else None,
           "loss": describe_loss(model.loss) if compiled else None}
    if not compiled and default_optimizer:
        import keras
        out["default"] = {"optimizer": describe_optimizer(keras.optimizers.get(default_optimizer)),
                          "loss": describe_loss(default_loss)}
    return out
