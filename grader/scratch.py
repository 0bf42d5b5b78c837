"""The grader's temporary folders, and the ones a killed grader left behind.

A run's temporary folder holds the children's working folders and the data bundle
(about 180 MB for CIFAR-10).  Python removes it when the run ends, even after Ctrl-C or
SIGTERM; a grader killed with SIGKILL (the kernel's OOM killer, a scheduler's hard
limit, a node lost under Ray) cannot.  So each folder holds a lock (``flock``) for as long
as its grader lives, and every new run removes the grader folders whose lock it can take:
their owner has ended.  A lock, not a process id: a grader in another container that
shares ``/tmp`` has a process id this one cannot see, but its lock holds all the same.
"""
from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import tempfile
from pathlib import Path

LOCK = ".grader-owner"


def _locked(prefix: str) -> tuple[Path, int]:
    """A new folder (the folders killed graders left swept first) and its held lock."""
    sweep()
    path = Path(tempfile.mkdtemp(prefix=prefix))
    lock = os.open(path / (LOCK + ".new"), os.O_CREAT | os.O_RDWR | os.O_CLOEXEC, 0o600)
    fcntl.flock(lock, fcntl.LOCK_EX)
    # Named only once held: a sweep never finds the lock free before it is taken.
    os.rename(path / (LOCK + ".new"), path / LOCK)
    return path, lock


@contextlib.contextmanager
def folder(prefix: str):
    """A new temporary folder (``tempfile``'s place, ``prefix``) locked while the block
    runs, removed after it; the folders that killed graders left are swept first."""
    path, lock = _locked(prefix)
    try:
        yield path
    finally:
        try:
            shutil.rmtree(path, ignore_errors=True)
        finally:
            os.close(lock)


def held(prefix: str) -> Path:
    """A new temporary folder locked for the rest of this process's life (a Ray worker's
    kept processes live there): the kernel releases the lock when the process ends, and a
    later run's sweep removes the folder."""
    return _locked(prefix)[0]  # the descriptor stays open, the lock held, until the end


def sweep(root: str | None = None) -> list[Path]:
    """Remove the grader folders under ``root`` (the temporary folder) whose owner has
    ended; returns them.  A folder without the lock file (not made by ``folder``) is
    left alone."""
    removed = []
    base = Path(root or tempfile.gettempdir())
    try:
        candidates = [p for p in base.iterdir() if p.name.startswith("grader-")]
    except OSError:
        return removed
    for path in candidates:
        try:
            fd = os.open(path / LOCK, os.O_RDWR | os.O_CLOEXEC | os.O_NOFOLLOW)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # held: its grader is running
            os.close(fd)
            continue
        try:
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
        finally:
            os.close(fd)
    return removed
