"""A real Ray cluster of two nodes on this machine, for the cluster tests and the
throughput benchmark.

Run it only inside a network namespace that has nothing but the loopback (``unshare -n``):
Ray otherwise advertises the machine's other addresses.  Each node is a ``ray start
--block`` in its own PID namespace, so that one ``kill -9`` of the namespace's first
process takes the whole node down, and stopping the cluster stops exactly the processes
it started, by PID (never ``ray stop``, which kills every Ray process on the machine).
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

RAY_VERSION = "2.60.0"  # the version pyproject pins; the tests refuse another


def loopback_up() -> None:
    """A new network namespace starts with its loopback down."""
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)


def only_loopback() -> bool:
    """True in a network namespace whose one interface is the loopback."""
    return [name for _, name in socket.if_nameindex()] == ["lo"]


class Node:
    def __init__(self, argv: list[str], log: Path):
        self.log = open(log, "wb")
        # unshare forks: its child is the namespace's first process, and when that one
        # dies the kernel kills every other process in the namespace.
        self.proc = subprocess.Popen(["unshare", "--pid", "--fork", "--mount-proc", *argv],
                                     stdout=self.log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)

    @property
    def init_pid(self) -> int | None:
        """Host PID of the first process in the node's PID namespace."""
        try:
            children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children") \
                .read_text().split()
        except OSError:
            return None
        return int(children[0]) if children else None

    def pids(self) -> list[int]:
        """Every process of the node (descendants of the namespace's first process)."""
        root = self.init_pid
        if root is None:
            return []
        out, todo = [], [root]
        while todo:
            pid = todo.pop()
            out.append(pid)
            try:
                for tid in os.listdir(f"/proc/{pid}/task"):
                    todo += [int(c) for c in
                             Path(f"/proc/{pid}/task/{tid}/children").read_text().split()]
            except OSError:
                continue
        return out

    def kill(self) -> None:
        """kill -9 the namespace's first process: the node and all it runs die at once."""
        pid = self.init_pid
        if pid is not None:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


class Cluster:
    """``with Cluster(tmp, nodes=2) as c:`` a head (and a second node) of ``cpus`` CPUs each;
    ``c.address`` is what ``--ray-address`` takes."""

    def __init__(self, root: Path, nodes: int = 2, cpus: int = 1, port: int = 6380):
        self.root = Path(root)
        self.port = port
        self.address = f"127.0.0.1:{port}"
        self.n = nodes
        self.cpus = cpus
        self.nodes: list[Node] = []

    def __enter__(self) -> "Cluster":
        ray = shutil.which("ray")
        if ray is None:
            raise RuntimeError("the ray command is not installed")
        self.root.mkdir(parents=True, exist_ok=True)
        # Ray's sockets live in its temp dir, and a UNIX socket's path has at most 107
        # bytes: a short folder of its own, not one under pytest's long tmp_path.
        self.temp_dir = Path(tempfile.mkdtemp(prefix="ray-", dir="/tmp"))
        common = ["--block", "--node-ip-address", "127.0.0.1", "--num-cpus", str(self.cpus),
                  "--num-gpus", "0", "--disable-usage-stats"]
        try:
            self.nodes.append(Node([ray, "start", "--head", "--port", str(self.port),
                                    "--include-dashboard", "false",
                                    "--temp-dir", str(self.temp_dir), *common],
                                   self.root / "head.log"))
            self._wait_for_port()
            for i in range(1, self.n):
                self.nodes.append(Node([ray, "start", "--address", self.address, *common],
                                       self.root / f"node{i}.log"))
            self._wait_for_nodes(self.n)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _wait_for_port(self, timeout: float = 90) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.nodes[0].proc.poll() is not None:
                raise RuntimeError("the head node exited: "
                                   + (self.root / "head.log").read_text()[-2000:])
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.5)
        raise RuntimeError("the head node did not open its port")

    def _wait_for_nodes(self, n: int, timeout: float = 120) -> None:
        import ray

        end = time.monotonic() + timeout
        ray.init(address=self.address, log_to_driver=False, configure_logging=False)
        try:
            while time.monotonic() < end:
                if sum(node["Alive"] for node in ray.nodes()) >= n:
                    return
                time.sleep(1)
        finally:
            ray.shutdown()
        raise RuntimeError(f"{n} Ray nodes did not come up")

    def __exit__(self, *exc) -> None:
        for node in reversed(self.nodes):
            node.kill()
        self.nodes = []
        shutil.rmtree(self.temp_dir, ignore_errors=True)
