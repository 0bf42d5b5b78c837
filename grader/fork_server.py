"""The builders' fork server, seen from the grader: builders forked from one process that
imported keras once, instead of each starting Python, keras and TensorFlow (about 4.5 s of
a core per submission).  Used where a class is graded (a ``session.TrainerPool`` keeps
it), and only where each forked builder can be held apart as firmly as a started one
(``possible``): a sandbox (bubblewrap or Landlock), Landlock's signal scoping (ABI 6+, so
that a builder can signal neither the server nor another builder), and a cgroup per
builder (its memory limit, and an end to everything it starts).  Elsewhere, and whenever
a fork fails, a builder is started afresh as before.

The server's side is ``child/fork_server.py``.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

from . import cgroups
from .errors import BackendError
from .sandbox import Child, SandboxLimits, allow_for, child_setup, wait_for_hello

# Landlock's scoping of signals and abstract UNIX sockets.
MIN_LANDLOCK_ABI = 6


def possible(limits: SandboxLimits) -> str | None:
    """None when builders may be forked under these limits, else why not."""
    from .environment import visible_gpus

    kind = limits.confinement.kind if limits.confinement else "none"
    if not sys.platform.startswith("linux"):
        return "not Linux"
    if kind not in ("bubblewrap", "landlock"):
        return "no sandbox"
    if limits.confinement.landlock_abi < MIN_LANDLOCK_ABI:
        return f"Landlock ABI {limits.confinement.landlock_abi} does not scope signals"
    backend = os.environ.get("KERAS_BACKEND") or "tensorflow"  # the children's (sandbox.py)
    if backend != "tensorflow":
        return f"the {backend} backend keeps threads that a fork does not carry"
    if limits.gpu is not None or visible_gpus():
        return "a GPU: CUDA's state does not survive a fork"
    if cgroups.available() is None:
        return "no cgroup per builder can be made here"
    return None


def _children(pid: int) -> list[int]:
    out: list[int] = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                out += [int(p) for p in f.read().split()]
    except (OSError, ValueError):
        pass
    return out


def _inner_pid(pid: int) -> int | None:
    """The process id ``pid`` has in its own PID namespace (the last of NSpid)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("NSpid:"):
                    return int(line.split()[-1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def find_pid(ancestor: int, inner: int) -> int | None:
    """The grader's process id for ``ancestor`` or its descendant whose id in its own PID
    namespace is ``inner`` (bubblewrap gives the server a namespace of its own)."""
    if _inner_pid(ancestor) == inner:
        return ancestor
    stack = [ancestor]
    while stack:
        for pid in _children(stack.pop()):
            if _inner_pid(pid) == inner:
                return pid
            stack.append(pid)
    return None


class ForkedProcess:
    """A forked builder, with the part of ``subprocess.Popen`` that ``sandbox.Child`` uses.
    Its exit status comes from the server, which is its parent."""

    def __init__(self, server: "ForkServer", pid: int, inner: int, stdout):
        self.server = server
        self.pid = pid
        self.inner = inner
        self.stdout = stdout
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            self.returncode = self.server.exit_code(self.inner, self.pid)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        end = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if end is not None and time.monotonic() >= end:
                raise subprocess.TimeoutExpired(f"builder {self.pid}", timeout)
            self.server.wait_for_exit(0.5 if end is None else
                                      max(min(end - time.monotonic(), 0.5), 0.0))
        return self.returncode

    def kill(self) -> None:
        try:
            os.kill(self.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


class ForkServer:
    """One server for builders with the same limits and data bundle; its builders' folders
    are made under ``root``, which its sandbox lets it reach (each builder reaches only its
    own)."""

    def __init__(self, root: Path, limits: SandboxLimits, bundle: Path | None,
                 import_timeout_s: float):
        self.root = root
        self.limits = limits
        self.bundle = bundle
        self.import_timeout_s = import_timeout_s
        root.mkdir(parents=True, exist_ok=True)
        self.sock, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            # Not Landlocked itself (it runs no student code): a Landlock domain nests, and
            # its rules (its own /proc entry) would deny each builder its own.
            self.child = Child(root, limits, bundle, role="fork_server",
                               extra_fd=theirs.fileno(), extra={"landlock": None})
        finally:
            theirs.close()
        self.usable: bool | None = None  # known once it has said hello
        self._pid: int | None = None  # the server's own process, in the grader's ids
        self.forks = 0
        self._request = threading.Lock()
        self._hello_lock = threading.Lock()
        self._cond = threading.Condition()
        self._replies: dict[int, dict] = {}
        self._exits: dict[int, int] = {}
        self._closed = False
        self._reader = threading.Thread(target=self._read, daemon=True,
                                        name="grader-fork-server")
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                data = self.sock.recv(65536)
            except OSError:
                data = b""
            with self._cond:
                if not data:
                    self._closed = True
                    self._cond.notify_all()
                    return
                msg = json.loads(data)
                if msg.get("ev") == "exit":
                    self._exits[msg["pid"]] = msg["code"]
                else:
                    self._replies[msg.get("id")] = msg
                self._cond.notify_all()

    @property
    def alive(self) -> bool:
        return not self._closed and self.child.alive

    def ready(self) -> bool:
        """Whether builders can be forked now: waits for the server's hello the first time
        (it imports keras meanwhile)."""
        with self._hello_lock:  # a class's jobs start their first builders at once
            if self.usable is None:
                self._greet()
        return bool(self.usable) and self.alive

    def _greet(self) -> None:
        try:
            greeting = wait_for_hello(self.child, self.import_timeout_s,
                                      "builders' fork server")
        except BackendError:  # a builder started afresh will say why keras cannot start
            self.usable = False
        else:  # the server forks only TensorFlow on a CPU, and says so
            self._pid = find_pid(self.child.proc.pid, greeting["pid"])
            self.usable = greeting.get("forks") is True and self._pid is not None
        if not self.usable:
            self.close()

    def fork(self, workdir: Path, cmd_r: int, evt_w: int, env: dict,
             cgroup: cgroups.ChildCgroup) -> ForkedProcess | None:
        """A builder forked for ``workdir``, in ``cgroup`` before it can run student code;
        None when the server cannot fork one (the caller starts a builder afresh)."""
        if not self.ready():
            return None
        out_r, out_w = os.pipe()
        with self._request:
            self.forks += 1
            rid = self.forks
            # Landlock's rules for its own folder, under bubblewrap too: the server's
            # namespace holds every builder's folder.
            setup = child_setup(self.limits, allow_for(workdir, self.limits, self.bundle),
                                landlock_always=True)
            request = {"id": rid, "workdir": str(workdir), "env": env, "setup": setup}
            try:
                socket.send_fds(self.sock, [json.dumps(request).encode()],
                                [cmd_r, evt_w, out_w])
            except OSError:
                os.close(out_r)
                return None
            finally:
                os.close(out_w)
            with self._cond:
                self._cond.wait_for(lambda: rid in self._replies or self._closed, timeout=10)
                reply = self._replies.pop(rid, None)
        # Among the server's own children, ids in its namespace are unique.
        pid = next((p for p in _children(self._pid) if _inner_pid(p) == reply["pid"]), None) \
            if reply is not None and reply.get("ev") == "forked" else None
        if pid is None:
            os.close(out_r)
            return None
        try:
            cgroup.add(pid)
        except OSError:
            os.kill(pid, signal.SIGKILL)
            os.close(out_r)
            return None
        return ForkedProcess(self, pid, reply["pid"], open(out_r, "rb"))

    def exit_code(self, inner: int, pid: int) -> int | None:
        with self._cond:
            if inner in self._exits:
                return self._exits.pop(inner)
            if self._closed and not os.path.exists(f"/proc/{pid}"):
                return -signal.SIGKILL  # the server went first; it took its builders along
        return None

    def wait_for_exit(self, timeout: float) -> None:
        with self._cond:
            self._cond.wait(timeout)

    def new_folder(self) -> Path:
        folder = self.root / f"builder-{uuid.uuid4().hex[:12]}"
        folder.mkdir()
        return folder

    def close(self) -> None:
        self.child.close()
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        self._reader.join(timeout=2)

