"""Which keras backend, framework versions and device the child trains on: recorded with
every result.  Imports keras, so only the child (or a benchmark) calls it."""
from __future__ import annotations

import os
import platform
import sys

from ..environment import cpu_isa, cpu_name


def backend_info() -> dict:
    import keras
    import numpy

    backend = keras.backend.backend()
    versions = {"python": platform.python_version(), "keras": keras.__version__,
                "numpy": numpy.__version__}
    gpus: list[str] = []
    if backend == "tensorflow":
        import tensorflow as tf
        versions["tensorflow"] = tf.__version__
        for d in tf.config.list_physical_devices("GPU"):
            details = tf.config.experimental.get_device_details(d)
            gpus.append(details.get("device_name", d.name))
    elif backend == "jax":
        import jax
        versions["jax"] = jax.__version__
        gpus = [getattr(d, "device_kind", str(d)) for d in jax.devices() if d.platform != "cpu"]
    elif backend == "torch":
        import torch
        versions["torch"] = torch.__version__
        if torch.cuda.is_available():
            gpus = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    cpu = cpu_name()
    device = {"backend": backend, "kind": "gpu" if gpus else "cpu",
              "name": ", ".join(gpus) if gpus else cpu,
              "cpu": cpu, "cpu_count": os.cpu_count(), "platform": sys.platform}
    isa = cpu_isa()
    if isa:
        device["cpu_isa"] = isa
    if gpus and os.environ.get("CUDA_VISIBLE_DEVICES"):
        device["cuda_visible_devices"] = os.environ["CUDA_VISIBLE_DEVICES"]
    return {"versions": versions, "device": device}
