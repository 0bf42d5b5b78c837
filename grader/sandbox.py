"""The grader's side of the child process that runs student code.

One child per submission serves its tasks one after another (keras is
imported once); when a task kills or hangs the child, the child is killed and
a fresh one serves the next task, so one bad task never costs the others.
The child gets its own working directory, its own session (so the whole
process group can be killed), no stdin, and an environment without the
parent's credentials.  Its stdout and stderr are captured with a bound, so a
submission that prints without end cannot fill memory.
"""
from __future__ import annotations

import collections
import os
import select
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from . import protocol

OUTPUT_TAIL_BYTES = 64 * 1024
# Variables the child may inherit: what Python, keras and the accelerators need.
# Everything else (tokens, cloud credentials, SSH agents) stays behind.
_ENV_KEEP = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR", "KERAS_BACKEND", "KERAS_HOME",
             "CUDA_VISIBLE_DEVICES", "NVIDIA_VISIBLE_DEVICES", "LD_LIBRARY_PATH", "XLA_FLAGS",
             "XLA_PYTHON_CLIENT_PREALLOCATE", "XLA_PYTHON_CLIENT_MEM_FRACTION",
             "TF_FORCE_GPU_ALLOW_GROWTH", "OMP_NUM_THREADS", "OPENBLAS_CORETYPE",
             "OPENBLAS_L2_SIZE", "VIRTUAL_ENV", "PYTHONHASHSEED")


def child_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k in _ENV_KEEP}
    grader_root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = grader_root
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env["TF_CPP_MIN_LOG_LEVEL"] = os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2")
    return env


@dataclass
class Ended:
    """Why a wait for the child ended without the message it waited for."""

    reason: str  # "timeout" or "exited"
    message: str
    returncode: int | None = None


class _Tail:
    """Keeps the last bytes of a stream and counts the rest."""

    def __init__(self, limit: int = OUTPUT_TAIL_BYTES):
        self.chunks: collections.deque[bytes] = collections.deque()
        self.size = 0
        self.total = 0
        self.limit = limit
        self.lock = threading.Lock()

    def add(self, data: bytes) -> None:
        with self.lock:
            self.chunks.append(data)
            self.size += len(data)
            self.total += len(data)
            while self.size - len(self.chunks[0]) >= self.limit:
                self.size -= len(self.chunks.popleft())

    def text(self) -> str:
        with self.lock:
            data = b"".join(self.chunks)[-self.limit:]
        return data.decode("utf-8", "replace")


class Child:
    def __init__(self, workdir: Path):
        self.workdir = workdir
        cmd_r, self._cmd_w = os.pipe()
        self._evt_r, evt_w = os.pipe()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "grader.worker", str(cmd_r), str(evt_w)],
            pass_fds=(cmd_r, evt_w), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, cwd=workdir, env=child_env(), start_new_session=True)
        os.close(cmd_r)
        os.close(evt_w)
        self._reader = protocol.LineReader(self._evt_r)
        self._pending: collections.deque[dict] = collections.deque()
        self.output = _Tail()
        self._drain = threading.Thread(target=self._pump, daemon=True)
        self._drain.start()
        self.hello: dict | None = None

    def _pump(self) -> None:
        for chunk in iter(lambda: self.proc.stdout.read1(1 << 16), b""):
            self.output.add(chunk)

    def send(self, msg: dict) -> bool:
        try:
            protocol.write(self._cmd_w, msg)
            return True
        except (BrokenPipeError, OSError):
            return False

    def wait_for(self, event: str | tuple[str, ...], timeout_s: float,
                 on_event=None) -> dict | Ended:
        """Return the next message of kind ``event`` (or one of several), passing others to
        ``on_event``."""
        events = (event,) if isinstance(event, str) else event
        deadline = time.monotonic() + timeout_s
        while True:
            while self._pending:
                msg = self._pending.popleft()
                if msg.get("ev") in events:
                    return msg
                if on_event is not None:
                    on_event(msg)
            if self._reader.eof:
                code = self.proc.wait()
                return Ended("exited", _exit_text(code), code)
            left = deadline - time.monotonic()
            if left <= 0:
                self.kill()
                return Ended("timeout", f"did not finish within {timeout_s:.0f} s")
            ready, _, _ = select.select([self._evt_r], [], [], min(left, 1.0))
            if ready:
                self._pending.extend(self._reader.feed())

    def kill(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                self.proc.kill()
        self.proc.wait()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.send({"op": "exit"})
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        self.kill()
        for fd in (self._cmd_w, self._evt_r):
            try:
                os.close(fd)
            except OSError:
                pass
        self._drain.join(timeout=2)


def _exit_text(code: int) -> str:
    if code is not None and code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        hint = " (out of memory?)" if name == "SIGKILL" else ""
        return f"the process running the submission was killed by {name}{hint}"
    return f"the process running the submission exited with code {code}"
