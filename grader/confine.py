"""What the child that runs student code may see, and how that is enforced.

One allow-list, three ways to hold the child to it, best first:

- ``bubblewrap`` (``bwrap``, the sandbox Flatpak is built on): new mount, PID, IPC, UTS,
  cgroup and network namespaces (and a user namespace where the grader is not root); the
  child's filesystem is built from the allow-list alone, so nothing else exists for it.
- ``landlock``: where bubblewrap cannot run (no user namespaces, as in many Docker
  containers and on Gradescope), the kernel's Landlock restricts the child to the same
  allow-list before the student's code is imported (``grader/landlock.py``); TCP is
  denied too (ABI 4+), and signals to processes outside (ABI 6+).
- ``none``: process isolation only (limits, scrubbed environment, network namespace where
  allowed), with a warning everywhere the results are shown.

The allow-list: the Python installation and its packages, the grader's own package, the
system libraries, a few files of /etc, the array bundle the child may read (never test
labels), its working folder (writable), a private /tmp, its own /proc, a minimal /dev,
and the GPU device nodes when there are GPUs.  Not the data file, not the grader's home
or working folder, not other submissions, not the parent's /proc.
"""
from __future__ import annotations

import glob
import os
import shutil
import site
import subprocess
import sys
import sysconfig
from dataclasses import dataclass, field
from pathlib import Path

KINDS = ("bubblewrap", "landlock", "none")
# Read by Python, the dynamic linker and TensorFlow at start-up; nothing secret.
ETC_FILES = ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/localtime",
             "/etc/nsswitch.conf", "/etc/passwd", "/etc/group", "/etc/hosts",
             "/etc/mime.types", "/etc/alternatives", "/etc/os-release", "/etc/host.conf",
             "/etc/gai.conf", "/etc/matplotlibrc", "/etc/fonts")
SYSTEM_DIRS = ("/usr", "/lib", "/lib64", "/lib32", "/bin", "/sbin", "/opt/conda")
# What keras' backends read of /proc and /sys: CPU and memory facts, not other processes.
SYSTEM_INFO = ("/proc/cpuinfo", "/proc/meminfo", "/proc/stat", "/proc/sys/kernel",
               "/proc/sys/vm/overcommit_memory", "/sys/devices/system/cpu",
               "/sys/fs/cgroup", "/sys/bus/pci", "/sys/devices/system/node",
               "/sys/kernel/mm/transparent_hugepage")
GPU_DEVICES = ("/dev/nvidia*", "/dev/nvidia-caps", "/dev/dri", "/dev/kfd")
GPU_DIRS = ("/usr/local/nvidia", "/usr/local/cuda", "/proc/driver/nvidia")


@dataclass(frozen=True)
class Confinement:
    """The sandbox a child runs under, and why this one."""

    kind: str  # "bubblewrap", "landlock" or "none"
    why: str
    landlock_abi: int = 0

    def describe(self) -> dict:
        return {"kind": self.kind, "why": self.why, "landlock_abi": self.landlock_abi}


@dataclass
class AllowList:
    read: list[str] = field(default_factory=list)
    execute: list[str] = field(default_factory=list)
    read_write: list[str] = field(default_factory=list)
    devices: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return {"read": self.read, "execute": self.execute, "read_write": self.read_write,
                "devices": self.devices}


def _existing(paths) -> list[str]:
    out = []
    for p in paths:
        p = os.path.abspath(p)
        if os.path.exists(p) and p not in out:
            out.append(p)
    return out


def python_paths() -> list[str]:
    """Where the child's Python finds its standard library and packages: the interpreter's
    prefixes and site-packages (the user's too, where Python reads it), and the folders
    its .pth files add inside them or that are another installation's site-packages.  Not
    the parent's sys.path (its first entry may be the user's working folder), not
    PYTHONPATH, and not another folder a .pth file adds: whatever lies there (a bait file
    planted on PYTHONPATH reached a result once) would be readable in every sandbox."""
    prefixes = [sys.prefix, sys.base_prefix, sys.exec_prefix, os.path.dirname(sys.executable),
                os.path.realpath(sys.executable)]
    paths = prefixes + [v for k, v in sysconfig.get_paths().items() if k != "scripts"]
    sites = list(site.getsitepackages()) +         ([site.getusersitepackages()] if site.ENABLE_USER_SITE else [])
    paths += sites
    roots = [os.path.realpath(p) for p in prefixes[:3] + sites]
    for folder in sites:
        for pth in glob.glob(os.path.join(folder, "*.pth")):
            try:
                lines = Path(pth).read_text(errors="replace").splitlines()
            except OSError:
                continue
            paths += [line.strip() for line in lines
                      if line.strip() and not line.startswith(("#", "import"))
                      and os.path.isdir(line.strip()) and _package_folder(line.strip(), roots)]
    return _existing(paths)


def _package_folder(path: str, roots: list[str]) -> bool:
    """A folder a .pth file adds that may be in the sandbox: inside the interpreter's own
    folders, or another installation's site-packages (a venv layered on another); not a
    checkout or a home folder, whose other files would be readable too."""
    real = os.path.realpath(path)
    return any(real.startswith(r + os.sep) for r in roots) or \
        os.path.basename(real) in ("site-packages", "dist-packages")


def grader_package() -> str:
    return str(Path(__file__).resolve().parent)


def allow_list(workdir: Path, bundle: Path | None, gpus: bool) -> AllowList:
    allow = AllowList()
    allow.execute = _existing([*SYSTEM_DIRS, *python_paths(), grader_package()])
    allow.read = _existing([*ETC_FILES, *SYSTEM_INFO, "/dev/urandom", "/dev/random",
                            "/dev/zero", "/dev/full"]
                           + ([str(bundle)] if bundle is not None else [])
                           + (list(GPU_DIRS) if gpus else []))
    # Not the host's /dev/shm: other processes' shared memory lives there (bubblewrap
    # gives the child a private /dev of its own).
    allow.read_write = _existing([str(workdir), "/dev/null"])
    if gpus:
        allow.devices = _existing(p for pattern in GPU_DEVICES for p in glob.glob(pattern))
    return allow


def bwrap_path() -> str | None:
    return shutil.which("bwrap")


def _bwrap_works(bwrap: str) -> str | None:
    """None when bubblewrap can build a sandbox here, else what it said."""
    argv = [bwrap, "--unshare-all", "--die-with-parent", "--cap-drop", "ALL",
            "--ro-bind", "/", "/", "--proc", "/proc", "--dev", "/dev", "--", "true"]
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return str(exc)
    return None if proc.returncode == 0 else (proc.stderr.strip() or f"exit {proc.returncode}")


def detect(preferred: str = "auto") -> Confinement:
    """The best sandbox this machine allows, or the one asked for (an error message in
    ``why`` when it cannot run)."""
    from . import landlock

    abi = landlock.abi_version() if sys.platform.startswith("linux") else 0
    notes = []
    if preferred in ("auto", "bubblewrap"):
        bwrap = bwrap_path()
        problem = "bwrap is not installed (Debian/Ubuntu: apt-get install bubblewrap)" \
            if bwrap is None else _bwrap_works(bwrap)
        if problem is None:
            return Confinement("bubblewrap", f"bubblewrap at {bwrap} builds the child's "
                                             f"namespaces", abi)
        notes.append(f"bubblewrap cannot run: {problem}")
        if preferred == "bubblewrap":
            return Confinement("none", "; ".join(notes), abi)
    if preferred in ("auto", "landlock"):
        if abi >= 1:
            return Confinement("landlock", "; ".join(notes + [f"Landlock ABI {abi} restricts "
                                                               f"the child's file access"]),
                               abi)
        notes.append("Landlock is not available (Linux 5.13+ with Landlock enabled)")
        if preferred == "landlock":
            return Confinement("none", "; ".join(notes), abi)
    if preferred == "none":
        notes.append("no sandbox was asked for (--sandbox none)")
    return Confinement("none", "; ".join(notes), abi)


def bwrap_argv(allow: AllowList, workdir: Path, block_network: bool,
               tmp_mb: int = 2048) -> list[str]:
    """bubblewrap's command line for the allow-list: a filesystem that holds nothing else,
    with a private /tmp and /dev/shm of at most ``tmp_mb`` MiB each."""
    size = str(tmp_mb * 2**20)
    argv = [bwrap_path() or "bwrap", "--unshare-all", "--die-with-parent", "--cap-drop", "ALL",
            "--proc", "/proc", "--dev", "/dev", "--size", size, "--tmpfs", "/tmp",
            "--size", size, "--tmpfs", "/dev/shm"]
    if not block_network:
        argv.append("--share-net")
    bound: list[str] = []
    for path in allow.execute + allow.read:
        if path.startswith(("/proc", "/dev/")):
            continue  # the sandbox's own /proc and /dev
        if any(path == b or path.startswith(b.rstrip("/") + "/") for b in bound):
            # Inside a folder bound already: visible as it is.  Binding it again fails
            # for a symlink (/usr/local/cuda -> cuda-13.0) in a read-only mount.
            continue
        bound.append(path)
        argv += ["--ro-bind-try", path, path]
    for path in allow.read_write:
        if path.startswith("/dev/"):
            continue
        argv += ["--bind", path, path]
    for path in allow.devices:
        argv += ["--dev-bind-try", path, path]
    argv += ["--chdir", str(workdir), "--"]
    return argv
