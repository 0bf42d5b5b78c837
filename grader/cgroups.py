"""A control group of its own for each child, where the machine lets the grader make one.

Polling the resident memory of the child's session misses what a student can put
elsewhere: a process started in a new session, pages of a ``memfd`` or of a tmpfs
(``/tmp``, ``/dev/shm``), which belong to no process's resident set.  The kernel charges
all of them to the child's cgroup.  So, where it can, the grader makes one cgroup per
child, below the cgroup it runs in, with

- a memory limit (cgroup v2 ``memory.max``; v1 ``memory.limit_in_bytes``), which the
  parent also reads while it waits (``usage``) to say "memory limit" rather than "crash";
- a process limit (``pids.max``; threads count, so it is generous);
- a way to end everything in it (v2 ``cgroup.kill``, else every pid in it, until empty).

Both hierarchies occur in the wild (this project's CI machine mounts v1's memory and
pids controllers, with an unused v2 hierarchy beside them).  The grader only makes and
removes the cgroups it creates (named ``grader-<pid>-<random>``) and never moves or changes
another.  Where no cgroup can be made (no permission, no controller), ``create`` returns
None, the results' environment says so, and the parent's polling is the fallback.
"""
from __future__ import annotations

import os
import signal
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

MOUNTS = "/proc/self/mounts"
# Threads count as tasks: TensorFlow starts tens per core.  A fork bomb stops here.
MAX_TASKS = 4096


def _mounts() -> list[tuple[str, str, set[str]]]:
    """(mount point, fstype, options) of every cgroup filesystem."""
    out = []
    try:
        lines = Path(MOUNTS).read_text().splitlines()
    except OSError:
        return out
    for line in lines:
        parts = line.split()
        if len(parts) >= 4 and parts[2] in ("cgroup", "cgroup2"):
            out.append((parts[1], parts[2], set(parts[3].split(","))))
    return out


def _own_paths() -> dict[str, str]:
    """This process's cgroup path per v1 controller, and under "" for v2."""
    out = {}
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return out
    for line in lines:
        _, controllers, path = line.split(":", 2)
        for c in (controllers.split(",") if controllers else [""]):
            out[c] = path
    return out


def _writable_child(parent: Path, name: str) -> Path | None:
    _reap(parent)
    try:
        path = parent / name
        path.mkdir()
        return path
    except OSError:
        return None


def _reap(parent: Path) -> None:
    """Remove the empty cgroups a grader that has died left here (killed with SIGKILL, it
    could not remove them); a live grader's are left alone."""
    for d in parent.glob("grader-*-*"):
        try:
            pid = int(d.name.split("-")[1])
        except ValueError:
            continue
        try:
            os.kill(pid, 0)
            continue  # its grader is alive
        except ProcessLookupError:
            pass
        except PermissionError:
            continue  # alive, another user's
        try:
            d.rmdir()  # fails while a process is still inside: then it stays
        except OSError:
            pass


@dataclass
class ChildCgroup:
    """The cgroup(s) one child runs in: one v2 directory, or a v1 directory in the
    memory and in the pids hierarchy."""

    version: int
    dirs: list[Path]  # v2: [dir]; v1: [memory dir, pids dir]

    @property
    def procs_files(self) -> list[str]:
        return [str(d / "cgroup.procs") for d in self.dirs]

    def add(self, pid: int) -> None:
        """Move a running process in (a forked builder, before it runs student code);
        OSError when the kernel refuses."""
        for f in self.procs_files:
            Path(f).write_text(str(pid))

    def describe(self) -> dict:
        return {"version": self.version, "memory_limit": True, "process_limit": MAX_TASKS}

    def usage(self) -> int | None:
        """Bytes charged to the child now: processes anywhere, tmpfs and memfd pages."""
        name = "memory.current" if self.version == 2 else "memory.usage_in_bytes"
        try:
            return int((self.dirs[0] / name).read_text())
        except (OSError, ValueError):
            return None

    def held_mb(self) -> float | None:
        """Memory the child holds now and cannot give back: anonymous pages of its
        processes, wherever they run, and shared memory (tmpfs, memfd).  Not the page cache
        of files it read, which the kernel reclaims."""
        try:
            stat = dict(line.split() for line in
                        (self.dirs[0] / "memory.stat").read_text().splitlines())
        except (OSError, ValueError):
            return None
        keys = ("anon", "shmem") if self.version == 2 else ("total_rss", "total_shmem")
        try:
            return sum(int(stat.get(k, 0)) for k in keys) / 2**20
        except ValueError:
            return None

    def _memory_events(self) -> dict[str, int]:
        """The kernel's memory event counts for the cgroup (v2 ``memory.events``, v1
        ``memory.oom_control`` with ``failcnt``); empty where they cannot be read."""
        name = "memory.events" if self.version == 2 else "memory.oom_control"
        try:
            counts = {k: int(v) for k, v in (line.split() for line in
                                             (self.dirs[0] / name).read_text().splitlines())}
            if self.version == 1:
                counts["failcnt"] = int((self.dirs[0] / "memory.failcnt").read_text())
            return counts
        except (OSError, ValueError):
            return {}

    def hit_memory_limit(self) -> bool:
        """Whether the kernel refused memory to the child or killed it for memory."""
        events = self._memory_events()
        return events.get("oom_kill", 0) > 0 or \
            events.get("max" if self.version == 2 else "failcnt", 0) > 0

    def oom_killed(self) -> bool:
        """Whether the kernel killed a process of the child's for its memory limit (the
        child itself may live on: a process it started held the memory)."""
        return self._memory_events().get("oom_kill", 0) > 0

    def pids(self) -> set[int]:
        out: set[int] = set()
        for f in self.procs_files:
            try:
                out |= {int(p) for p in Path(f).read_text().split()}
            except (OSError, ValueError):
                continue
        return out

    def kill(self) -> None:
        """End every process in the cgroup, however it was started."""
        if self.version == 2:
            try:
                (self.dirs[0] / "cgroup.kill").write_text("1")
            except OSError:
                pass
        for _ in range(50):
            left = self.pids()
            if not left:
                return
            for pid in left:
                try:
                    os.kill(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
            time.sleep(0.02)

    def remove(self) -> None:
        self.kill()
        for d in self.dirs:
            for _ in range(50):
                try:
                    d.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:  # processes still leaving
                    time.sleep(0.02)


def create(memory_mb: int, mounts: list | None = None,
           own: dict | None = None) -> ChildCgroup | None:
    """A new cgroup for one child with these limits, or None where none can be made.
    ``mounts`` and ``own`` default to this machine's (``/proc/self``)."""
    name = f"grader-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    own = _own_paths() if own is None else own
    mounts = _mounts() if mounts is None else mounts
    memory_bytes = str(memory_mb * 2**20)
    v1 = {c: m for m, fs, opts in mounts if fs == "cgroup" for c in ("memory", "pids")
          if c in opts}
    if "memory" in v1 and "pids" in v1 and "memory" in own and "pids" in own:
        mem = _writable_child(Path(v1["memory"] + own["memory"]), name)
        pids = _writable_child(Path(v1["pids"] + own["pids"]), name) if mem else None
        if mem and pids:
            try:
                (mem / "memory.limit_in_bytes").write_text(memory_bytes)
                swap = mem / "memory.memsw.limit_in_bytes"
                if swap.exists():
                    swap.write_text(memory_bytes)
                (pids / "pids.max").write_text(str(MAX_TASKS))
                return ChildCgroup(1, [mem, pids])
            except OSError:
                pass
        ChildCgroup(1, [d for d in (mem, pids) if d]).remove()
    # v2: below the grader's own cgroup where it delegates memory and pids (systemd's
    # Delegate=), else below the hierarchy's root, where they are enabled (root, systemd).
    parents = [Path(mount + own[""]) for mount, fs, _ in mounts if fs == "cgroup2"
               and "" in own] + [Path(mount) for mount, fs, _ in mounts if fs == "cgroup2"]
    for parent in dict.fromkeys(parents):
        try:
            enabled = (parent / "cgroup.subtree_control").read_text().split()
        except OSError:
            continue
        if not {"memory", "pids"} <= set(enabled):
            continue  # enabling controllers would change a cgroup that is not ours
        d = _writable_child(parent, name)
        if d is None:
            continue
        try:
            (d / "memory.max").write_text(memory_bytes)
            if (d / "memory.swap.max").exists():
                (d / "memory.swap.max").write_text("0")
            (d / "pids.max").write_text(str(MAX_TASKS))
            return ChildCgroup(2, [d])
        except OSError:
            ChildCgroup(2, [d]).remove()
    return None


def enter_argv(cgroup: ChildCgroup | None, argv: list[str]) -> list[str]:
    """``argv`` started inside ``cgroup``: a shell moves itself in, then becomes the
    command, so the child is in its cgroup before it runs anything (no preexec_fn, which
    is unsafe in a process with threads)."""
    if cgroup is None:
        return argv
    script = 'for f in "$@"; do case "$f" in --) shift; break;; esac; ' \
             'echo $$ > "$f" || exit 126; shift; done; exec "$@"'
    return ["/bin/sh", "-c", script, "sh", *cgroup.procs_files, "--", *argv]


def available() -> int | None:
    """The cgroup version a child's cgroup is made with here, or None where none can be
    made (a cgroup made and removed again)."""
    made = create(64)
    if made is None:
        return None
    made.remove()
    return made.version


def enforced() -> str:
    """What limits hold a child on this machine, in words (``grader doctor``, results)."""
    version = available()
    if version is None:
        return ("polling only: no cgroup can be made here (not root, and no delegated "
                "cgroup with the memory and pids controllers), so memory held outside the "
                "child's session, in tmpfs or in a memfd is not counted, and processes are "
                "not limited")
    return (f"cgroup v{version} per child: memory (every process it starts, tmpfs and "
            f"memfd pages), at most {MAX_TASKS} processes and threads, and everything it "
            f"started ended with it")
