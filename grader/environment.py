"""The machine's CPU and NVIDIA GPUs, named without importing a framework: the parent
reads them to place jobs; the child adds the backend's view (``child/backend.py``)."""
from __future__ import annotations

import os
import platform


def _first_cpu(cpuinfo: str = "/proc/cpuinfo") -> dict[str, str]:
    """The first processor's fields in /proc/cpuinfo (every core of a machine is the same
    CPU); empty where the file does not exist (not Linux)."""
    fields: dict[str, str] = {}
    try:
        with open(cpuinfo) as f:
            for line in f:
                if not line.strip():
                    break
                key, _, value = line.partition(":")
                fields[key.strip()] = value.strip()
    except OSError:
        pass
    return fields


def cpu_name() -> str:
    name = _first_cpu().get("model name")
    return name if name is not None else platform.processor() or platform.machine()


# The instruction sets a CPU kernel library (oneDNN, XLA) picks its kernels by: two CPUs
# with the same name but different sets train the same model, data and seed to different
# bits (the reference fc, seed 0: 0.5076 on one AMD EPYC, 0.5132 on another).
ISA_FLAGS = ("avx2", "fma", "avx_vnni", "avx512f", "avx512_vnni", "avx512_bf16",
             "amx_tile", "amx_bf16")


def cpu_isa(cpuinfo: str = "/proc/cpuinfo") -> str | None:
    """The CPU's family, model and the kernel-relevant instruction sets, e.g.
    "family 25 model 17: avx2 fma"; None where /proc/cpuinfo does not say (not Linux)."""
    fields = _first_cpu(cpuinfo)
    if "flags" not in fields:
        return None
    flags = set(fields["flags"].split())
    have = " ".join(f for f in ISA_FLAGS if f in flags) or "none of " + ", ".join(ISA_FLAGS)
    return f"family {fields.get('cpu family', '?')} model {fields.get('model', '?')}: {have}"


def usable_cores() -> int:
    """The cores this process may run on (its affinity, where the platform says)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


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


def unused_gpus(device: dict, outside: dict | None = None) -> str | None:
    """Why training runs on the CPU although the NVIDIA driver lists GPUs (``device``: what
    the child's backend reported), with the fix; None when there is nothing to say.
    ``outside``: what the same backend reported in a child without the sandbox, where
    ``grader doctor`` looked; a GPU seen there is hidden by the sandbox, not missing from
    the install."""
    gpus = visible_gpus()
    if not gpus or device.get("kind") == "gpu":
        return None
    backend = device.get("backend", "keras")
    if outside and outside.get("kind") == "gpu":
        return (f"The NVIDIA driver lists {len(gpus)} GPU(s) and the {backend} backend sees "
                f"them outside the sandbox ({outside.get('name')}), but none inside it: "
                f"training runs on the CPU ({device.get('cpu') or device.get('name')}), many "
                f"times slower. The install is fine; the sandbox hides the GPUs' device "
                f"files, a grader bug: report it with the output of `grader doctor --json`.")
    fix = ("pip install 'keras-lab-grader[tensorflow-gpu]' (TensorFlow with its CUDA libraries, "
           "tensorflow[and-cuda])" if backend == "tensorflow" else
           "install a CUDA build of jax (pip install 'jax[cuda12]')" if backend == "jax" else
           "install a CUDA build of PyTorch")
    return (f"The NVIDIA driver lists {len(gpus)} GPU(s) but the {backend} backend sees none: "
            f"training runs on the CPU ({device.get('cpu') or device.get('name')}), many times "
            f"slower. Fix: {fix}; `grader doctor` checks it.")

