"""What both child processes do first: confine themselves, import keras, say hello; and the
loop that serves one command at a time.

The builder (``worker.py``) imports the submission; the trainer (``trainer.py``) never
does.  Both are started by ``sandbox.Child`` with two extra pipes (commands in, events
out).
"""
from __future__ import annotations

import gc
import json
import os
import sys
import time

from .. import protocol


def network_blocked() -> bool:
    """True when this process sees no network interface but loopback."""
    import socket
    try:
        return all(name == "lo" for _, name in socket.if_nameindex())
    except OSError:
        return False


def setup(config: dict) -> dict:
    """The child confines itself before anything else runs in it (and before keras starts
    threads): file-size and core limits, death with the grader, a network namespace with
    no interface, and the Landlock allow-list.  Returns what holds, for the hello."""
    import ctypes
    import resource

    mb = int(config.get("max_file_mb", 2048)) * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_FSIZE, (mb, mb))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    state = {"kind": config.get("sandbox", "none"), "problem": None}
    if not sys.platform.startswith("linux"):
        return state
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, 9, 0, 0, 0)  # PR_SET_PDEATHSIG, SIGKILL: die with the grader
    if config.get("block_network"):
        if libc.unshare(0x40000000) != 0:  # CLONE_NEWNET, as root
            libc.unshare(0x10000000 | 0x40000000)  # with a user namespace, unprivileged
    if config.get("landlock"):
        from .. import landlock
        rules = config["landlock"]
        try:
            # Its own /proc entry (the target of /proc/self), not other processes'.
            # The GPUs' device files are opened read-write (CUDA's /dev/nvidiactl,
            # /dev/nvidia0, /dev/nvidia-uvm): granted read-only, the child saw no GPU.
            state["landlock"] = landlock.restrict(
                read=rules["read"] + [f"/proc/{os.getpid()}"], execute=rules["execute"],
                read_write=rules["read_write"], list_dirs=config.get("list_dirs", []),
                devices=rules.get("devices", []))
        except OSError as exc:
            state.update(kind="none", problem=f"Landlock could not be enforced: {exc}")
    return state


def hello(confinement: dict | None = None) -> dict:
    """Import keras (timed: the start-up cost of every child), switch on determinism, and
    return the hello message: backend, versions, device, sandbox."""
    t0 = time.perf_counter()
    from .deferred import deferred_imports
    with deferred_imports():
        import keras  # noqa: F401
    from .backend import backend_info
    info = backend_info()
    determinism = False
    if info["device"]["backend"] == "tensorflow":
        import tensorflow as tf
        tf.config.experimental.enable_op_determinism()
        determinism = True
    elif info["device"]["backend"] == "jax":
        determinism = info["device"]["kind"] == "cpu" or \
            "xla_gpu_deterministic_ops=true" in os.environ.get("XLA_FLAGS", "")
    # What the backend imported lives as long as the child.  keras' clear_session(), run
    # before every task, collects garbage in full, which walks all of it (about 300,000
    # objects with TensorFlow: 0.14-0.2 s a task on a 2-core CPU); frozen, it is skipped.
    # The submission is imported later: its objects are collected as before.
    gc.freeze()
    return {"ev": "hello", "pid": os.getpid(), "import_s": time.perf_counter() - t0,
            "determinism": determinism, "network_blocked": network_blocked(),
            "sandbox": confinement or {"kind": "none", "problem": None}, **info}


class Served:
    """A child's command loop: ``handlers`` maps an ``op`` to a function of the message."""

    def __init__(self, evt_fd: int, commands):
        self.evt_fd = evt_fd
        self.commands = commands

    def emit(self, msg: dict) -> None:
        protocol.write(self.evt_fd, msg)

    def next_command(self) -> dict:
        line = self.commands.readline()
        return json.loads(line) if line else {"op": "exit"}

    def serve(self, handlers: dict) -> None:
        while True:
            msg = self.next_command()
            if msg.get("op") == "exit":
                return
            handler = handlers.get(msg.get("op"))
            if handler is not None:
                handler(msg)


def main(argv: list[str], make) -> None:
    """Run a child: ``make(evt_fd, commands)`` returns the object whose ``handlers()`` serve."""
    sys.stdout.reconfigure(line_buffering=True)
    cmd_fd, evt_fd = int(argv[1]), int(argv[2])
    confinement = setup(json.loads(argv[3]) if len(argv) > 3 else {})
    child = make(evt_fd, os.fdopen(cmd_fd, "rb"))
    child.emit(hello(confinement))
    child.serve(child.handlers())
    os._exit(0)  # skip interpreter teardown: a student's atexit hooks must not hang us
