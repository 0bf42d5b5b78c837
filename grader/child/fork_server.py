"""The builders' fork server: keras imported once, a fresh builder forked from it for each
submission before any student code runs.

Starting a builder is mostly importing keras and TensorFlow (about 4.5 s of one core);
a class, or the test suite, starts one per submission.  This process pays that once: it
is started like a builder (in its own sandbox and cgroup, its working folder the parent
of the builders' folders), imports keras, says hello, and then only forks.  It never
imports a submission and runs no student code.

Each forked builder, before it reads its first command, takes the pipes the grader sent
for it (commands, events, output), leaves every other descriptor of the server behind,
starts its own session, moves into its own folder, and confines itself with the
Landlock rules of its own folder (``start.setup``): its siblings' folders, the server and
each other are out of its reach (Landlock's signal and socket scoping, ABI 6).  The
grader moves it into its own cgroup before it sends the ``import`` command.

Requests arrive on a UNIX socket (the pipes travel as ``SCM_RIGHTS``); the server answers
each with the builder's process id, and reports every builder's exit status.  Only
TensorFlow on a CPU is forked (``usable``): JAX, PyTorch and CUDA keep threads or device
state that a fork does not carry, and there every builder is started afresh.
"""
from __future__ import annotations

import json
import os
import select
import signal
import socket
import sys
import tempfile
import time

from .. import protocol
from .start import hello, network_blocked, setup

MAX_REQUEST = 1 << 20


def usable(greeting: dict) -> bool:
    """Whether builders may be forked from a process with this backend and device."""
    device = greeting.get("device") or {}
    return device.get("backend") == "tensorflow" and device.get("kind") == "cpu"


def _reap(sock: socket.socket) -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        sock.send(json.dumps({"ev": "exit", "pid": pid,
                              "code": os.waitstatus_to_exitcode(status)}).encode())


def become_builder(request: dict, fds: list[int], greeting: dict, server_fds: list[int]
                   ) -> None:
    """In the forked process: take the request's pipes, drop the server's, confine, and
    serve as a builder until told to exit.  Never returns."""
    t0 = time.perf_counter()
    cmd_r, evt_w, out_w = fds
    os.setsid()
    signal.set_wakeup_fd(-1)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # the student's subprocesses are reaped as usual
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(out_w, 1)
    os.dup2(out_w, 2)
    for fd in {null, out_w, *server_fds}:
        os.close(fd)
    server_cwd = os.getcwd()
    os.chdir(request["workdir"])
    os.environ.update(request["env"])
    # What a started builder has from its own start, the server's values being cached
    # since its start: its command line names its own pipes, its folder is first on
    # sys.path (``python -m`` puts the working folder there), and tempfile and keras
    # keep their folders (TMPDIR, KERAS_HOME) in its own folder, not the server's.
    sys.argv[1:] = [str(cmd_r), str(evt_w), json.dumps(request["setup"])]
    if sys.path and sys.path[0] == server_cwd:
        sys.path[0] = request["workdir"]
    tempfile.tempdir = None
    from keras.src.backend import config as keras_config
    if hasattr(keras_config, "_KERAS_DIR"):
        keras_config._KERAS_DIR = os.environ["KERAS_HOME"]
    state = setup(request["setup"])
    from .worker import Worker
    worker = Worker(evt_w, os.fdopen(cmd_r, "rb"))
    worker.emit({**greeting, "pid": os.getpid(), "import_s": time.perf_counter() - t0,
                 "network_blocked": network_blocked(), "sandbox": state, "forked": True})
    worker.serve(worker.handlers())
    os._exit(0)  # as a started builder ends: no interpreter teardown, no student atexit


def serve(sock: socket.socket, cmd_fd: int, evt_fd: int, greeting: dict) -> None:
    wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)  # wakes the select below
    server_fds = [sock.fileno(), cmd_fd, evt_fd, wake_r, wake_w]
    while True:
        ready, _, _ = select.select([sock, cmd_fd, wake_r], [], [], 5.0)
        if wake_r in ready:
            try:
                os.read(wake_r, 4096)
            except BlockingIOError:
                pass
        _reap(sock)
        if cmd_fd in ready:
            data = os.read(cmd_fd, 4096)
            if not data or b'"exit"' in data:
                return
        if sock not in ready:
            continue
        msg, fds, _, _ = socket.recv_fds(sock, MAX_REQUEST, 4)
        if not msg:
            return  # the grader closed its end
        request = json.loads(msg)
        if len(fds) != 3:
            for fd in fds:
                os.close(fd)
            sock.send(json.dumps({"ev": "refused", "id": request.get("id"),
                                  "why": f"expected 3 descriptors, received {len(fds)}"}
                                 ).encode())
            continue
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            try:
                become_builder(request, fds, greeting, server_fds)
            finally:
                os._exit(70)  # a fork that could not become a builder
        for fd in fds:
            os.close(fd)
        sock.send(json.dumps({"ev": "forked", "id": request["id"], "pid": pid}).encode())


def main(argv: list[str]) -> None:
    sys.stdout.reconfigure(line_buffering=True)
    cmd_fd, evt_fd = int(argv[1]), int(argv[2])
    config = json.loads(argv[3])
    sock = socket.socket(fileno=config["socket"])
    greeting = hello(setup(config))
    forks = usable(greeting)
    protocol.write(evt_fd, {**greeting, "forks": forks})
    if forks:
        serve(sock, cmd_fd, evt_fd, greeting)
    os._exit(0)


if __name__ == "__main__":
    main(sys.argv)
