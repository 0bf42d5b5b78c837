"""``grader doctor``: what protects this machine and whether a check can run here.

It starts a real child the way grading does (same sandbox, same launcher) and reads what
the child reports from inside: the sandbox in force, whether it has a network, the keras
backend and the devices that backend sees.  Then it says where the data would come from.
Every line is measured, none assumed; ``ready`` is true only when all of it holds.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from . import cgroups, confine, scratch
from .data import ENV_VAR, keras_cache_dir
from .environment import unused_gpus
from .sandbox import Child, Ended, SandboxLimits


@dataclass
class Item:
    name: str
    ok: bool
    detail: str


@dataclass
class Diagnosis:
    items: list[Item] = field(default_factory=list)

    @property
    def ready(self) -> bool:
        return all(i.ok for i in self.items)

    def to_dict(self) -> dict:
        return {"ready": self.ready,
                "items": [{"name": i.name, "ok": i.ok, "detail": i.detail} for i in self.items]}


def _data_source(data: str | Path | None) -> Item:
    if data is not None:
        where, how = Path(data).expanduser(), "--data"
    elif os.environ.get(ENV_VAR):
        where, how = Path(os.environ[ENV_VAR]).expanduser(), f"${ENV_VAR}"
    elif keras_cache_dir().is_dir():
        return Item("data", True, f"keras' cache: {keras_cache_dir()}")
    else:
        return Item("data", False, f"no --data, no ${ENV_VAR} and no keras cache "
                                   f"({keras_cache_dir()}): a check would try to download "
                                   f"CIFAR-10")
    if where.exists():
        return Item("data", True, f"{how}: {where}")
    return Item("data", False, f"{how} names {where}, which does not exist")


def _hello(confinement: confine.Confinement, timeout_s: float):
    """Start a child the way grading does, under ``confinement``; its hello (or how it
    ended) and the last lines it printed."""
    with scratch.folder("grader-doctor-") as tmp:
        workdir = tmp / "child"
        workdir.mkdir()
        child = Child(workdir, SandboxLimits(confinement=confinement))
        try:
            return (child.wait_for("hello", timeout_s),
                    child.output.text().strip().splitlines()[-3:])
        finally:
            child.close()


def diagnose(data: str | Path | None = None, sandbox: str = "auto",
             timeout_s: float = 120) -> Diagnosis:
    out = Diagnosis()
    chosen = confine.detect(sandbox)
    hello, tail = _hello(chosen, timeout_s)
    if isinstance(hello, Ended) or hello is None:
        why = hello.message if isinstance(hello, Ended) else "no answer"
        out.items.append(Item("child", False, f"the child process did not start keras: {why}"
                                              + (": " + " / ".join(tail) if tail else "")))
        out.items.append(Item("sandbox", chosen.kind != "none", f"{chosen.kind}: {chosen.why}"))
    else:
        actual = hello.get("sandbox") or {}
        kind = actual.get("kind", "none")
        detail = f"{kind}: {chosen.why}" + (f"; but {actual['problem']}"
                                             if actual.get("problem") else "")
        if kind == "none":
            detail += (". Student code could read every file this user can read: install "
                       "bubblewrap (apt-get install bubblewrap) or use Linux 5.13+ (Landlock)")
        out.items.append(Item("sandbox", kind != "none", detail))
        out.items.append(Item("network", bool(hello["network_blocked"]),
                              "blocked: the child sees no network interface but loopback"
                              if hello["network_blocked"] else
                              "NOT blocked: the child can reach the network"))
        device = hello["device"]
        versions = ", ".join(f"{k} {v}" for k, v in hello["versions"].items())
        out.items.append(Item("backend", True, f"keras backend {device['backend']} ({versions})"))
        unused = unused_gpus(device)
        if unused and kind != "none":
            # No student code runs in the doctor's child, so it may look without the
            # sandbox: a GPU seen there but not inside is the sandbox's doing, not the
            # install's.
            outside, _ = _hello(confine.detect("none"), timeout_s)
            if isinstance(outside, dict):
                unused = unused_gpus(device, outside=outside.get("device"))
        if unused:
            out.items.append(Item("devices", False, unused))
        else:
            out.items.append(Item("devices", True, f"{device['kind']}: {device['name']}"))
    out.items.append(Item("limits", True, cgroups.enforced()))
    out.items.append(_data_source(data))
    return out
