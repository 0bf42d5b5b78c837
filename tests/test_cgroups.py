"""Which cgroup a child gets: v1's memory and pids hierarchies, else v2 below the grader's
own cgroup or the hierarchy's root, only where the controllers are already enabled, and
none otherwise.  On folders made here (this machine's kernel mounts v1); the limits the
kernel then enforces are tested end to end in tests/test_isolation.py."""
from __future__ import annotations

import os
from pathlib import Path

from grader import cgroups


def _v2(root: Path, own: str, enabled: str) -> Path:
    mine = root / own.strip("/")
    mine.mkdir(parents=True)
    for d in (root, mine):
        (d / "cgroup.subtree_control").write_text("")
    (root / "cgroup.subtree_control").write_text(enabled)
    return mine


def test_v2_below_the_root_when_the_own_cgroup_delegates_nothing(tmp_path):
    root = tmp_path / "unified"
    _v2(root, "/user.slice/session-1.scope", "cpu memory pids\n")
    made = cgroups.create(512, mounts=[(str(root), "cgroup2", {"rw"})],
                          own={"": "/user.slice/session-1.scope"})
    assert made is not None and made.version == 2 and made.dirs[0].parent == root
    assert (made.dirs[0] / "memory.max").read_text() == str(512 * 2**20)
    assert (made.dirs[0] / "pids.max").read_text() == str(cgroups.MAX_TASKS)
    assert made.procs_files == [str(made.dirs[0] / "cgroup.procs")]


def test_no_cgroup_where_no_controller_is_enabled(tmp_path):
    root = tmp_path / "unified"
    _v2(root, "/a.scope", "cpu\n")
    assert cgroups.create(512, mounts=[(str(root), "cgroup2", {"rw"})], own={"": "/a.scope"}) \
        is None
    assert sorted(p.name for p in root.iterdir()) == ["a.scope", "cgroup.subtree_control"]


def test_v1_memory_and_pids_below_the_grader_s_own_paths(tmp_path):
    mem, pids = tmp_path / "memory", tmp_path / "pids"
    (mem / "job").mkdir(parents=True)
    pids.mkdir()
    made = cgroups.create(256, mounts=[(str(mem), "cgroup", {"rw", "memory"}),
                                       (str(pids), "cgroup", {"rw", "pids"})],
                          own={"memory": "/job", "pids": "/"})
    assert made is not None and made.version == 1
    assert made.dirs[0].parent == mem / "job" and made.dirs[1].parent == pids
    assert (made.dirs[0] / "memory.limit_in_bytes").read_text() == str(256 * 2**20)
    argv = cgroups.enter_argv(made, ["python", "-c", "pass"])
    assert argv[:3] == ["/bin/sh", "-c", argv[2]] and argv[-4:] == ["--", "python", "-c",
                                                                     "pass"]
    assert argv[3:-4] == ["sh", *made.procs_files]


def test_cgroups_a_dead_grader_left_are_removed_and_a_live_ones_kept(tmp_path):
    mem, pids = tmp_path / "memory", tmp_path / "pids"
    for root in (mem, pids):
        (root / "grader-999999999-deadbeef").mkdir(parents=True)  # no such process
        (root / f"grader-{os.getpid()}-0a0a0a0a").mkdir()  # this process: alive
    made = cgroups.create(256, mounts=[(str(mem), "cgroup", {"rw", "memory"}),
                                       (str(pids), "cgroup", {"rw", "pids"})],
                          own={"memory": "/", "pids": "/"})
    assert made is not None
    for root in (mem, pids):
        names = {d.name for d in root.iterdir()}
        assert "grader-999999999-deadbeef" not in names
        assert any(n.endswith("-0a0a0a0a") for n in names)
