"""What hardware and which library versions trained the models: recorded with every result."""
from __future__ import annotations

import os
import platform
import sys


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def visible_gpus() -> list[str]:
    """The NVIDIA GPUs this process may use, without importing a framework: the ids in
    CUDA_VISIBLE_DEVICES when it is set, else one per GPU the driver lists."""
    ids = os.environ.get("CUDA_VISIBLE_DEVICES")
    if ids is not None:
        ids = [i.strip() for i in ids.split(",") if i.strip()]
        # CUDA stops at the first invalid id ("-1" is the usual way to hide every GPU).
        return ids[:ids.index("-1")] if "-1" in ids else ids
    try:
        return [str(i) for i in range(len(os.listdir("/proc/driver/nvidia/gpus")))]
    except OSError:
        return []


def backend_info() -> dict:
    """Call only where keras is imported already (the child, or a benchmark)."""
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
    device = {"backend": backend, "kind": "gpu" if gpus else "cpu",
              "name": ", ".join(gpus) if gpus else cpu_name(),
              "cpu": cpu_name(), "cpu_count": os.cpu_count(), "platform": sys.platform}
    if gpus and os.environ.get("CUDA_VISIBLE_DEVICES"):
        device["cuda_visible_devices"] = os.environ["CUDA_VISIBLE_DEVICES"]
    return {"versions": versions, "device": device}
