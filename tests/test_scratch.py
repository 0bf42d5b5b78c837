"""A run's temporary folder is removed when its grader ends however it ends: by the run
itself, or (killed with SIGKILL) by the next run's sweep, never while its grader lives."""
from __future__ import annotations

import os
import signal
import subprocess
import sys

from grader import scratch

from conftest import REPO

HOLDS = """
import sys, time
from grader import scratch
with scratch.folder("grader-") as path:
    (path / "data.npy").write_bytes(b"x" * 1000)
    print(path, flush=True)
    time.sleep(600)
"""


def _holder(tmp_path):
    proc = subprocess.Popen([sys.executable, "-c", HOLDS], stdout=subprocess.PIPE, text=True,
                            cwd=REPO, env={**os.environ, "TMPDIR": str(tmp_path)})
    return proc, proc.stdout.readline().strip()


def test_a_killed_graders_folder_is_swept_and_a_living_ones_is_not(tmp_path):
    alive, alive_path = _holder(tmp_path)
    killed, killed_path = _holder(tmp_path)
    other = tmp_path / "grader-not-ours"  # no lock file: not made by a grader
    other.mkdir()
    try:
        killed.send_signal(signal.SIGKILL)
        killed.wait()
        assert os.path.isdir(killed_path)  # SIGKILL: nothing of the run could remove it
        removed = scratch.sweep(str(tmp_path))
        assert [str(p) for p in removed] == [killed_path]
        assert not os.path.exists(killed_path)
        assert os.path.isdir(alive_path) and other.is_dir()
    finally:
        alive.kill()
        alive.wait()


def test_a_folder_is_removed_when_its_run_ends(tmp_path, monkeypatch):
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    with scratch.folder("grader-") as path:
        assert (path / scratch.LOCK).exists()
        assert scratch.sweep(str(tmp_path)) == []  # its own lock is held
    assert not path.exists()


def test_a_folder_held_for_a_process_life_is_not_swept_while_it_lives(tmp_path, monkeypatch):
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    path = scratch.held("grader-pool-")  # a Ray worker's pool: its lock lasts the process
    assert scratch.sweep(str(tmp_path)) == [] and path.is_dir()
