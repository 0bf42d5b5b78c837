"""Shared fixtures: small synthetic CIFAR-shaped data made here, fixture submissions, rubrics."""
from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path

import numpy as np
import pytest

SUBMISSIONS = Path(__file__).parent / "submissions"
REPO = Path(__file__).resolve().parent.parent


def make_synthetic(n_train: int = 1000, n_test: int = 300, seed: int = 0):
    """CIFAR-10-shaped uint8 images with a learnable signal: each class is a fixed
    colour pattern plus noise, so a small model reaches high accuracy in a few epochs."""
    rng = np.random.default_rng(seed)
    templates = rng.normal(size=(10, 8, 8, 3))
    templates = templates.repeat(4, axis=1).repeat(4, axis=2)  # blocky: conv- and dense-friendly

    def sample(n):
        y = rng.integers(0, 10, size=n)
        x = 128 + 14 * templates[y] + rng.normal(scale=60, size=(n, 32, 32, 3))
        return np.clip(x, 0, 255).astype(np.uint8), y.astype(np.int64)

    x_train, y_train = sample(n_train)
    x_test, y_test = sample(n_test)
    return x_train, y_train, x_test, y_test


def pytest_configure(config):
    """Under pytest-xdist, each worker keeps to its own share of the cores.  Most of a test
    is a child process importing keras and building graphs on one core; a child sizes its
    threads, and a quick check its lanes, by the cores it may use, so workers that share
    every core start twice the children and oversubscribe both cores."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    count = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if worker.startswith("gw") and count > 1 and hasattr(os, "sched_setaffinity"):
        cores = sorted(os.sched_getaffinity(0))
        if len(cores) >= count:
            os.sched_setaffinity(0, cores[int(worker[2:])::count])


# The files that take longest, longest first (summed test times of a full run,
# 2026-11-30; docs/tests.md).  Under ``--dist loadfile`` a worker takes the next file when
# it finishes one, so a long file taken last keeps one worker busy while the other idles:
# these go first, every other file after them in its usual order (pyproject.toml turns
# off xdist's own order, by number of tests, which sent the cluster's four tests last).
LONGEST_FIRST = ("test_check.py", "test_isolation.py", "test_cluster.py",
                 "test_class_grading.py", "test_notebook.py", "test_trust.py",
                 "test_sandbox.py", "test_estimate.py")


def pytest_collection_modifyitems(config, items):
    def rank(item) -> int:
        name = item.path.name
        return LONGEST_FIRST.index(name) if name in LONGEST_FIRST else len(LONGEST_FIRST)
    items.sort(key=rank)  # stable: a file's tests keep their order


@contextlib.contextmanager
def every_core():
    """The processes started inside run on every core of the machine (a Ray cluster)."""
    if not hasattr(os, "sched_setaffinity"):
        yield
        return
    mine = os.sched_getaffinity(0)
    os.sched_setaffinity(0, range(os.cpu_count() or 1))
    try:
        yield
    finally:
        os.sched_setaffinity(0, mine)


@pytest.fixture(scope="session")
def synthetic_npz(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("data") / "synthetic.npz"
    x_train, y_train, x_test, y_test = make_synthetic()
    np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    return path


@pytest.fixture(scope="session")
def shared_trainers(tmp_path_factory):
    """``check`` keywords that keep trainers between the runs of a test worker, as a class
    batch does (``session.TrainerPool``; the data bundle written once, ``data_cache``):
    for the tests about what a submission does, not about starting processes.  A trainer
    runs no student code; ``tests/test_trust.py`` checks that a kept one trains each
    submission to the bit as a fresh one does."""
    from grader.session import TrainerPool

    root = tmp_path_factory.mktemp("trainers")
    pool = TrainerPool(root / "pool")
    yield {"trainers": pool, "data_cache": root / "bundles"}
    pool.close()


@pytest.fixture
def submission():
    def get(name: str) -> Path:
        path = SUBMISSIONS / name
        assert path.is_file(), path
        return path
    return get


@pytest.fixture
def fast_rubric(tmp_path):
    """The bundled rubric with short time limits, for the fixtures that hang or loop."""
    def make(task_timeout_s: float = 40, import_timeout_s: float = 40) -> Path:
        text = (REPO / "rubrics" / "cifar10.toml").read_text()
        text = text.replace("import_timeout_s = 120", f"import_timeout_s = {import_timeout_s}")
        for old in ("timeout_s = 3600", "timeout_s = 7200", "timeout_s = 10800"):
            text = text.replace(old, f"timeout_s = {task_timeout_s}")
        path = tmp_path / "fast.toml"
        path.write_text(text)
        return path
    return make


@pytest.fixture(autouse=True)
def _clear_keras_state():
    """Tests that build models in this process must not leak keras state into the next."""
    yield
    if "keras" in sys.modules:
        sys.modules["keras"].backend.clear_session()


@pytest.fixture
def loopback_server():
    """A server on 127.0.0.1:PORT that records every connection; stopped after the test.
    Call it with the port the fixture submission connects to."""
    import socket
    import threading

    servers = []

    def start(port: int) -> list:
        hits, stop = [], threading.Event()
        server = socket.socket()
        try:
            server.bind(("127.0.0.1", port))
        except OSError:
            pytest.skip(f"port {port} is busy")
        server.listen()
        server.settimeout(0.3)

        def accept():
            while not stop.is_set():
                try:
                    conn, _ = server.accept()
                    hits.append(1)
                    conn.close()
                except OSError:
                    continue

        thread = threading.Thread(target=accept)
        thread.start()
        servers.append((server, stop, thread))
        return hits

    yield start
    for server, stop, thread in servers:
        stop.set()
        thread.join()
        server.close()


def real_data_path() -> str | None:
    return os.environ.get("GRADER_CIFAR10")
