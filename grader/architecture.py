"""What may cross from the process that runs student code to the one that trains: a keras
architecture and compile configuration as plain JSON, checked here before anyone
rebuilds it.

A config carries architecture, not data, and names only keras' own classes:
- every object in it is one of keras' public classes (a layer, initializer,
  regularizer, constraint, optimizer, schedule, loss, metric, dtype policy, model), or
  one of keras' built-in functions by name (an activation, a loss, a metric);
- no ``Lambda``, no layer that wraps another framework's code, no serialized bytecode
  or bytes, no class from another module (a student's own class, whatever it is named);
- no list of more than ``MAX_NUMBERS`` numbers anywhere (a ``Constant`` initializer that
  holds the test images and their labels would otherwise rebuild a lookup table out of
  built-in layers), at most ``MAX_DATA_NUMBERS`` numbers in lists in all, shapes and
  the graph's wiring aside (weights trained elsewhere, split into many small
  ``Constant`` initializers of one or a few units each, would otherwise rebuild a
  pretrained model, exactly, under every limit above), and at most ``MAX_CHARS``
  characters in all.

Pure JSON: the grader's process runs it on what the builder sent, and the trainer runs
it again before its own, stricter check against keras itself (``child/rebuild.py``).
"""
from __future__ import annotations

import json

MAX_CHARS = 1_000_000
MAX_DEPTH = 64
MAX_NUMBERS = 64
MAX_DATA_NUMBERS = 256
# Keys whose lists describe shapes or the graph's wiring, never values a layer computes
# with; every other list's numbers count towards MAX_DATA_NUMBERS.
STRUCTURAL_KEYS = frozenset({
    "batch_shape", "batch_input_shape", "shape", "input_shape", "output_shape",
    "target_shape", "build_input_shape", "keras_history", "input_layers", "output_layers",
    "kernel_size", "strides", "dilation_rate", "pool_size", "padding", "cropping", "size",
    "dims", "axis", "noise_shape"})
# Objects keras writes into a config that are not classes.  Tensors are the graph's
# edges; arrays are bounded by MAX_NUMBERS like every other list.
SPECIAL_OBJECTS = {"__keras_tensor__", "__numpy__", "__tensor__", "__ellipsis__", "__slice__"}
# Built-in layers that run code the config cannot show, or load it from elsewhere.
REFUSED_CLASSES = {"Lambda", "TFSMLayer", "TorchModuleWrapper", "JaxLayer", "FlaxLayer",
                   "Layer", "Model"}
# Where keras' own functions may come from when a config names one.
FUNCTION_MODULES = ("activations", "losses", "metrics")


def is_keras_module(module) -> bool:
    return isinstance(module, str) and (module == "keras" or module.startswith("keras."))


class Walk:
    """Collects the reasons a config cannot cross, each once, at most ten."""

    def __init__(self):
        self.reasons: list[str] = []
        self.custom: list[str] = []
        self.data_numbers = 0  # in lists outside STRUCTURAL_KEYS

    def add(self, reason: str) -> None:
        if reason not in self.reasons and len(self.reasons) < 10:
            self.reasons.append(reason)

    def numbers(self, value) -> int:
        if isinstance(value, bool):
            return 0
        if isinstance(value, (int, float)):
            return 1
        if isinstance(value, list):
            return sum(self.numbers(v) for v in value)
        return 0

    def visit(self, value, depth: int = 0, key: str | None = None, counted: bool = False
              ) -> None:
        if depth > MAX_DEPTH:
            self.add(f"the configuration is nested more than {MAX_DEPTH} levels deep")
            return
        if isinstance(value, list):
            if not counted:  # a list inside a list was counted with it
                n = self.numbers(value)
                if n > MAX_NUMBERS:
                    self.add(f"it holds a list of {n:,} numbers: a configuration carries "
                             f"architecture (at most {MAX_NUMBERS} numbers in one list), "
                             f"not data")
                    return
                if key not in STRUCTURAL_KEYS:
                    self.data_numbers += n
            for v in value:
                self.visit(v, depth + 1, key, counted=True)
        elif isinstance(value, dict):
            if "class_name" in value:
                self.object(value)
            for k, v in value.items():
                self.visit(v, depth + 1, k)

    def finish(self) -> None:
        if self.data_numbers > MAX_DATA_NUMBERS:
            self.add(f"it holds {self.data_numbers:,} numbers in initializers and other "
                     f"values, shapes aside: a configuration carries architecture (at most "
                     f"{MAX_DATA_NUMBERS} such numbers in all), not data")

    def object(self, obj: dict) -> None:
        name, module = obj.get("class_name"), obj.get("module")
        if not isinstance(name, str):
            self.add("an object in it has no class name")
            return
        if name in SPECIAL_OBJECTS and module is None:
            return
        if name.startswith("__"):
            self.add(f"it holds a serialized {name.strip('_')} (code or raw bytes), which "
                     f"cannot be rebuilt safely")
            return
        if name == "function":
            fn = obj.get("config")
            if module == "builtins" or is_keras_module(module):
                return  # a keras function by name: the trainer resolves it or refuses it
            self.custom.append(f"function {fn!r}")
            self.add(f"it uses the function {fn!r} from {module or 'your code'}, not one of "
                     f"keras' own")
            return
        if not is_keras_module(module):
            where = f" (a subclass defined in {module})" if module else ""
            self.custom.append(name)
            self.add(f"custom class `{name}`{where} is not one of keras' own classes")
            return
        if name in REFUSED_CLASSES:
            self.custom.append(name)
            self.add(f"`{name}` runs code that its configuration does not hold")


def problems(config) -> list[str]:
    """Why ``config`` (a model's or a compile's, parsed JSON) cannot be rebuilt by the
    trainer: empty when it can."""
    try:
        size = len(json.dumps(config))
    except (TypeError, ValueError, RecursionError):
        return ["the configuration is not plain JSON"]
    if size > MAX_CHARS:
        return [f"the configuration is {size:,} characters long (at most {MAX_CHARS:,}): "
                f"a configuration carries architecture, not data"]
    walk = Walk()
    walk.visit(config)
    walk.finish()
    return walk.reasons


def custom_names(config) -> list[str]:
    """The classes and functions in ``config`` that are not keras' own (for the report)."""
    walk = Walk()
    try:
        walk.visit(config)
    except RecursionError:
        return []
    return walk.custom
