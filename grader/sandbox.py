"""The grader's side of the child process that runs student code.

One child per submission serves its tasks one after another (keras is
imported once); when a task kills or hangs the child, the child is killed and
a fresh one serves the next task, so one bad task never costs the others.

What the child gets: its own working directory (also its HOME, so keras'
dataset cache is not where the student's code would look), its own session,
no stdin, an environment without the parent's credentials, a network
namespace with no interfaces where the platform allows (Linux, as root or
with user namespaces), a cap on the size of any file it writes, and a memory
limit enforced by watching the resident memory of its whole session.  Its
stdout and stderr are captured with a bound, so a submission that prints
without end cannot fill memory.  Processes it starts are found afterwards by a
marker in their environment and killed with it.

What it may see of the filesystem is decided by ``confine.py``: under bubblewrap
the child is started inside its own namespaces; under Landlock the child restricts
itself before it imports the student's code.  No ``preexec_fn``: the parent may run
threads (batch grading), where forking into Python code is unsafe, so the child's
limits are set by the child itself (``worker.setup``) or by bubblewrap.
"""
from __future__ import annotations

import collections
import json
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from . import cgroups, confine, protocol
from .errors import BackendError

OUTPUT_TAIL_BYTES = 64 * 1024
MARKER = "GRADER_SANDBOX_ID"
# Variables the child may inherit: what Python, keras and the accelerators need.
# Everything else (tokens, cloud credentials, SSH agents, the data path) stays behind.
_ENV_KEEP = ("PATH", "LANG", "LC_ALL", "TZ", "KERAS_BACKEND",
             "CUDA_VISIBLE_DEVICES", "NVIDIA_VISIBLE_DEVICES", "LD_LIBRARY_PATH", "XLA_FLAGS",
             "XLA_PYTHON_CLIENT_PREALLOCATE", "XLA_PYTHON_CLIENT_MEM_FRACTION",
             "TF_FORCE_GPU_ALLOW_GROWTH", "OMP_NUM_THREADS", "OPENBLAS_CORETYPE",
             "OPENBLAS_L2_SIZE", "VIRTUAL_ENV", "PYTHONHASHSEED")


# Files a child's working folder may hold: far more than any honest run writes.
MAX_ENTRIES = 100_000


@dataclass(frozen=True)
class SandboxLimits:
    memory_mb: int = 8192
    max_file_mb: int = 2048
    block_network: bool = True
    # The one GPU the child may see (CUDA_VISIBLE_DEVICES); None inherits the grader's.
    # Batch grading pins each job to its own GPU: JAX takes most of a GPU's memory at
    # start-up, so two children on one GPU fail to allocate.
    gpu: str | None = None
    # Several children on that GPU at once: they allocate memory as they need it.
    gpu_shared: bool = False
    # How the child is confined (confine.detect()); None: process isolation only.
    confinement: confine.Confinement | None = None


def child_env(workdir: Path, marker: str, gpu: str | None = None,
              gpu_shared: bool = False) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k in _ENV_KEEP}
    if gpu is not None:
        env["CUDA_VISIBLE_DEVICES"] = gpu
    # TensorFlow's op determinism is switched on in the child; on JAX the same switch
    # for GPUs is an XLA flag, read when XLA starts. Set explicitly (true or false), the
    # grader's own value is kept.
    flags = env.get("XLA_FLAGS", "")
    if env.get("KERAS_BACKEND") == "jax" and "xla_gpu_deterministic_ops" not in flags:
        env["XLA_FLAGS"] = f"{flags} --xla_gpu_deterministic_ops=true".strip()
    if gpu_shared:
        env.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
        env.setdefault("TF_FORCE_GPU_ALLOW_GROWTH", "true")
    # The grader's package only: the caller's PYTHONPATH is not passed on, and its folders
    # are not in the sandbox (confine.python_paths); keras comes from the interpreter's
    # own site-packages.
    env.update(PYTHONPATH=str(Path(__file__).resolve().parent.parent), PYTHONUNBUFFERED="1",
               PYTHONDONTWRITEBYTECODE="1", HOME=str(workdir), TMPDIR=str(workdir),
               KERAS_HOME=str(workdir / ".keras"), MPLCONFIGDIR=str(workdir / ".mpl"),
               TF_CPP_MIN_LOG_LEVEL=os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2"))
    env[MARKER] = marker
    return env


@dataclass
class Ended:
    """Why a wait for the child ended without the message it waited for."""

    reason: str  # "timeout", "memory" or "exited"
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

    def text(self, since: int = 0) -> str:
        """The kept tail; with ``since`` (an earlier ``total``), only what came after it."""
        with self.lock:
            data = b"".join(self.chunks)[-self.limit:]
            if since:
                data = data[-max(self.total - since, 0):] if self.total > since else b""
        return data.decode("utf-8", "replace")


# What TensorFlow, JAX and their libraries print at start-up: not the student's output.
_BACKEND_LOG = re.compile(
    r"^(?:[IWEF]\d{4} \d\d:\d\d:\d\d\.\d+\s+\d+ [\w./-]+:\d+\]"
    r"|WARNING: All log messages before absl::InitializeLog"
    r"|.*(?:oneDNN custom operations are on|cpu_feature_guard|This TensorFlow binary is "
    r"optimized|To enable the following instructions|rebuild TensorFlow with the appropriate"
    r"|Unable to register cu(?:DNN|FFT|BLAS) factory|TF-TRT Warning|Could not find cuda "
    r"drivers|computation placer already registered|Fontconfig error|"
    r"All log messages before absl))")


def student_output(text: str) -> str:
    """The child's output without the backends' own start-up logging."""
    return "\n".join(line for line in text.splitlines() if not _BACKEND_LOG.match(line))


def _session_rss_mb(sid: int) -> float:
    """Resident memory of every process in session ``sid`` (Linux /proc), in MiB."""
    total = 0
    page = os.sysconf("SC_PAGE_SIZE")
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            if int(fields[3]) == sid:  # field 6 of stat: the session id
                with open(f"/proc/{entry}/statm") as f:
                    total += int(f.read().split()[1]) * page
        except (OSError, IndexError, ValueError):
            continue
    return total / (1024 * 1024)


def _marked_pids(marker: str) -> list[int]:
    """Processes whose environment carries our marker: the child and whatever it started."""
    needle = f"{MARKER}={marker}".encode()
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/environ", "rb") as f:
                    if needle in f.read().split(b"\0"):
                        pids.append(int(entry))
            except OSError:
                continue
    return pids


# The children: the builder imports the submission, the trainer never does; the builders'
# fork server imports keras and forks builders (fork_server.py).
ROLES = {"builder": "grader.child.worker", "trainer": "grader.child.trainer",
         "fork_server": "grader.child.fork_server"}


def allow_for(workdir: Path, limits: SandboxLimits, bundle: Path | None) -> confine.AllowList:
    """What a child with this working folder and data bundle may see (``confine``)."""
    from .environment import visible_gpus
    return confine.allow_list(workdir, bundle, bool(limits.gpu) or bool(visible_gpus()))


def child_setup(limits: SandboxLimits, allow: confine.AllowList,
                landlock_always: bool = False) -> dict:
    """What the child sets up itself (``child.start.setup``): limits, network, and the
    Landlock rules of its allow-list where Landlock is the sandbox (or ``landlock_always``:
    a forked builder, inside its server's bubblewrap too)."""
    kind = limits.confinement.kind if limits.confinement else "none"
    landlock = kind == "landlock" or (landlock_always and kind != "none")
    return {"max_file_mb": limits.max_file_mb, "sandbox": kind,
            "block_network": limits.block_network and kind != "bubblewrap",
            "landlock": allow.to_json() if landlock else None,
            "list_dirs": [str(Path(confine.grader_package()).parent)]}


def launch_argv(workdir: Path, limits: SandboxLimits, bundle: Path | None,
                cmd_fd: int, evt_fd: int, role: str = "builder",
                extra: dict | None = None) -> list[str]:
    """The child's command line: the builder, the trainer or the fork server, under
    bubblewrap when that is the sandbox, with its own set-up (limits, network, Landlock
    rules; and ``extra``) as its third argument.  Each sees only its own working folder
    and the data bundle."""
    kind = limits.confinement.kind if limits.confinement else "none"
    allow = allow_for(workdir, limits, bundle)
    setup = {**child_setup(limits, allow), **(extra or {})}
    argv = [sys.executable, "-m", ROLES[role], str(cmd_fd), str(evt_fd),
            json.dumps(setup)]
    if kind == "bubblewrap":
        argv = confine.bwrap_argv(allow, workdir, limits.block_network,
                                  limits.max_file_mb) + argv
    return argv


def wait_for_hello(child: "Child", limit: float, what: str) -> dict:
    """The child's hello, once it has imported keras; ``BackendError`` when it could not."""
    hello = child.wait_for("hello", limit)
    if isinstance(hello, Ended):
        tail = child.output.text().strip().splitlines()[-5:]
        raise BackendError(f"Could not start keras in the {what}: " + hello.message
                           + (": " + " / ".join(tail) if tail else ""),
                           hint="Check that keras and a backend (TensorFlow, JAX or PyTorch) "
                                "import in this Python: python -c 'import keras'.")
    return hello


class Child:
    """A child process: started here, or (a builder) forked by ``server``, a
    ``fork_server.ForkServer`` whose builders' folders hold ``workdir`` (removed when the
    child closes), started here all the same when the server cannot fork.  ``extra_fd`` is
    passed on to it (the fork server's socket)."""

    def __init__(self, workdir: Path, limits: SandboxLimits = SandboxLimits(),
                 bundle: Path | None = None, role: str = "builder", server=None,
                 extra_fd: int | None = None, extra: dict | None = None):
        self.workdir = workdir
        self.role = role
        self.limits = limits
        self.marker = uuid.uuid4().hex
        cmd_r, self._cmd_w = os.pipe()
        self._evt_r, evt_w = os.pipe()
        # A cgroup of its own where the machine allows one: a memory limit that counts
        # every process it starts and its tmpfs and memfd pages, a process limit, and a
        # way to end all of it (cgroups.py); else the polling below is all there is.
        self.cgroup = cgroups.create(limits.memory_mb)
        env = child_env(workdir, self.marker, limits.gpu, limits.gpu_shared)
        self.proc = None
        if server is not None and self.cgroup is not None:
            self.proc = server.fork(workdir, cmd_r, evt_w, env, self.cgroup)
            if self.proc is None:
                # Not forked; a process the server forked all the same may hold these
                # pipes: it reads the end of its commands and exits.  Fresh ones here.
                for fd in (cmd_r, self._cmd_w, self._evt_r, evt_w):
                    os.close(fd)
                cmd_r, self._cmd_w = os.pipe()
                self._evt_r, evt_w = os.pipe()
        self.forked = self.proc is not None
        self._folder_is_ours = server is not None  # in the server's folder, which outlives it
        if self.proc is None:
            fds = (cmd_r, evt_w) + ((extra_fd,) if extra_fd is not None else ())
            extra = {**(extra or {}), **({"socket": extra_fd} if extra_fd is not None else {})}
            self.proc = subprocess.Popen(
                cgroups.enter_argv(self.cgroup, launch_argv(workdir, limits, bundle, cmd_r,
                                                            evt_w, role, extra)),
                pass_fds=fds, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT, cwd=workdir, env=env, start_new_session=True)
        os.close(cmd_r)
        os.close(evt_w)
        self._reader = protocol.LineReader(self._evt_r)
        self._pending: collections.deque[dict] = collections.deque()
        self.reset_progress(0)
        self._disk_due = 0.0
        self.output = _Tail()
        self._drain = threading.Thread(target=self._pump, daemon=True,
                                       name=f"grader-output-{self.role}")
        self._drain.start()
        self.peak_rss_mb = 0.0

    def _pump(self) -> None:
        for chunk in iter(lambda: self.proc.stdout.read1(1 << 16), b""):
            self.output.add(chunk)

    def settle_output(self, limit_s: float = 0.5) -> None:
        """Wait (briefly) until what the child printed before its last message is in
        ``output``: its stdout and its event pipe are read by different threads, so a
        message can arrive before the lines printed just before it."""
        import array
        import fcntl
        import termios

        end = time.monotonic() + limit_s
        pending = array.array("i", [0])
        while time.monotonic() < end:
            try:
                fcntl.ioctl(self.proc.stdout.fileno(), termios.FIONREAD, pending)
            except (OSError, ValueError):
                return
            if pending[0] == 0:
                break
            time.sleep(0.005)
        time.sleep(0.01)  # the reading thread has read the last bytes: let it store them

    def send(self, msg: dict) -> bool:
        try:
            protocol.write(self._cmd_w, msg)
            return True
        except (BrokenPipeError, OSError):
            return False

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def _over_memory(self) -> bool:
        if not os.path.isdir("/proc"):
            return False
        if self.cgroup is not None and self.cgroup.oom_killed():
            return True  # the kernel enforced the limit on a process the child started
        rss = _session_rss_mb(self.proc.pid)
        held = self.cgroup.held_mb() if self.cgroup is not None else None
        used = max(rss, held or 0.0)
        self.peak_rss_mb = max(self.peak_rss_mb, used)
        return used > self.limits.memory_mb

    def wait_for(self, event: str | tuple[str, ...], timeout_s: float,
                 on_event=None, task: str | None = None) -> dict | Ended:
        """Return the next message of kind ``event`` (or one of several), passing progress
        messages to ``on_event``.  Enforces the time and memory limits while it waits, and
        checks every message: a malformed one (student code can write to the pipe too)
        ends the child."""
        events = (event,) if isinstance(event, str) else event
        deadline = time.monotonic() + timeout_s
        while True:
            while self._pending:
                msg = self._pending.popleft()
                problem = protocol.message_problem(msg, str(self.workdir), task)
                if msg.get("ev") in protocol.ANSWERS and msg.get("ev") not in events:
                    # An answer to a question not asked: the child's own code never sends one.
                    self.kill()
                    return Ended("protocol", f"sent a {msg.get('ev')!r} message when the "
                                             f"grader waited for {' or '.join(events)}; nothing "
                                             f"it reported was used")
                if msg.get("ev") in events:
                    if problem:
                        self.kill()
                        return Ended("protocol", f"sent malformed results ({problem}); "
                                                 f"nothing it reported was used")
                    return msg
                if on_event is not None and not problem and \
                        msg.get("ev") in ("batch", "epoch") and self._progress_due(msg):
                    on_event(msg)
            if self._reader.eof:
                try:
                    code = self.proc.wait(timeout=5)
                except subprocess.TimeoutExpired:  # it closed the pipe and runs on
                    self.kill()
                    return Ended("protocol", "closed the grader's message pipe and went on "
                                             "running; it was stopped, and nothing it "
                                             "reported was used")
                if self.cgroup is not None and self.cgroup.hit_memory_limit():
                    self.kill()
                    return Ended("memory", f"used more than the memory limit of "
                                           f"{self.limits.memory_mb} MiB and was stopped")
                return Ended("exited", _exit_text(code, self.role), code)
            left = deadline - time.monotonic()
            if left <= 0:
                self.kill()
                return Ended("timeout", f"did not finish within {timeout_s:.0f} s")
            if self._over_memory():
                self.kill()
                return Ended("memory", f"used more than the memory limit of "
                                       f"{self.limits.memory_mb} MiB and was stopped")
            if time.monotonic() >= self._disk_due:
                self._disk_due = time.monotonic() + 2.0
                full = self._over_disk()
                if full:
                    self.kill()
                    return Ended("disk", full)
            ready, _, _ = select.select([self._evt_r], [], [], min(left, 0.5))
            if ready:
                self._pending.extend(self._reader.feed())

    def _over_disk(self) -> str | None:
        """Why the working folder is over its limit (``max_file_mb`` in all, which is
        also the cap on one file, and 100,000 entries), or None."""
        total, entries, stack = 0, 0, [str(self.workdir)]
        while stack:
            try:
                with os.scandir(stack.pop()) as it:
                    for entry in it:
                        entries += 1
                        if entries > MAX_ENTRIES:
                            return (f"created more than {MAX_ENTRIES:,} files in its working "
                                    f"folder and was stopped")
                        if entry.is_dir(follow_symlinks=False):
                            stack.append(entry.path)
                        else:
                            total += entry.stat(follow_symlinks=False).st_blocks * 512
            except OSError:
                continue
        if total > self.limits.max_file_mb * 2**20:
            return (f"wrote more than {self.limits.max_file_mb} MiB in its working folder "
                    f"and was stopped")
        return None

    def reset_progress(self, epochs: int) -> None:
        """A new training of ``epochs`` epochs starts: its progress is shown afresh."""
        self._epochs, self._last_epoch, self._last_batch_at = epochs, 0, 0.0

    def _progress_due(self, msg: dict) -> bool:
        """Progress is shown, never trusted, and never floods the terminal: one update per
        new epoch within the budget asked for, and a bar update at most ten times a
        second, however many messages the child sends."""
        if msg["ev"] == "epoch":
            if not self._last_epoch < msg["epoch"] <= self._epochs:
                return False
            self._last_epoch = msg["epoch"]
            return True
        now = time.monotonic()
        if now - self._last_batch_at < 0.1 or msg["epoch"] > self._epochs:
            return False
        self._last_batch_at = now
        return True

    def kill(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                self.proc.kill()
        self.proc.wait()
        if self.cgroup is not None:  # everything it started, whatever its session
            self.cgroup.kill()
        self.kill_strays()

    def kill_strays(self) -> int:
        """Kill processes the submission started that left the child's session.  (A forked
        builder's environment is its server's, marker included: its cgroup, which a
        builder is forked only with, ends what it started.)"""
        if not os.path.isdir("/proc") or self.forked:
            return 0
        strays = [p for p in _marked_pids(self.marker) if p != os.getpid()]
        for pid in strays:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        return len(strays)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.send({"op": "exit"})
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        self.kill()
        if self.cgroup is not None:
            self.cgroup.remove()
        for fd in (self._cmd_w, self._evt_r):
            try:
                os.close(fd)
            except OSError:
                pass
        self._drain.join(timeout=2)
        if self._folder_is_ours:
            shutil.rmtree(self.workdir, ignore_errors=True)


def _exit_text(code: int, role: str = "builder") -> str:
    who = "the process running the submission" if role == "builder" else \
        "the grader's training process"
    if code is not None and code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        hint = " (out of memory?)" if name == "SIGKILL" else ""
        return f"{who} was killed by {name}{hint}"
    return f"{who} exited with code {code}"
