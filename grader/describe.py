"""Describe a built keras model as plain data: layers, configs, shapes, parameters, compile settings.

Runs in the child.  Everything the verdict rests on is decided later, in the
grader's process, from this description.
"""
from __future__ import annotations

import math

ACTIVATION_LAYERS = {"Softmax": "softmax", "ReLU": "relu", "LeakyReLU": "leaky_relu",
                     "ELU": "elu", "PReLU": "prelu"}
# Losses whose targets are one-hot vectors; every other built-in takes integer labels.
ONE_HOT_LOSSES = {"categorical_crossentropy", "categoricalcrossentropy",
                  "categorical_focal_crossentropy", "categoricalfocalcrossentropy",
                  "kl_divergence", "kldivergence", "kullback_leibler_divergence"}


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


def output_layer(model):
    try:
        return model.outputs[0]._keras_history.operation
    except Exception:
        layers = flat_layers(model)
        return layers[-1] if layers else None


def describe_loss(loss) -> dict:
    """Name, from_logits and label encoding of whatever the student passed as ``loss``."""
    if loss is None:
        return {"name": None, "from_logits": False, "one_hot": False}
    if isinstance(loss, str):
        name, from_logits = loss, False
    elif hasattr(loss, "get_config"):
        cfg = loss.get_config() or {}
        fn = getattr(loss, "fn", None)
        name = getattr(fn, "__name__", None) or type(loss).__name__
        from_logits = bool(cfg.get("from_logits", False))
    else:
        name, from_logits = getattr(loss, "__name__", repr(loss)), False
    key = name.lower()
    return {"name": name, "from_logits": from_logits,
            "one_hot": key in ONE_HOT_LOSSES or type(loss).__name__.lower() in ONE_HOT_LOSSES}


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
        layers.append({"index": i, "class_name": type(layer).__name__, "name": layer.name,
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
        "output_activation": _activation_of(out_layer) if out_layer is not None else None,
        "output_layer": type(out_layer).__name__ if out_layer is not None else None,
        "layers": layers,
    }


def describe_compile(model) -> dict:
    """The student's own compile settings, as the builder returned the model."""
    compiled = bool(getattr(model, "compiled", False)) and getattr(model, "loss", None) is not None
    return {"compiled": compiled,
            "optimizer": describe_optimizer(getattr(model, "optimizer", None)) if compiled else None,
            "loss": describe_loss(model.loss) if compiled else None}
