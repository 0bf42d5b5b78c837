"""Landlock: the kernel's unprivileged file-access sandbox (Linux 5.13+), through its three
system calls.  Runs in the child, before any student code and before keras starts its
threads (a Landlock domain binds the calling thread and what it starts from then on).

Landlock covers files, TCP and signals; two doors stay open beside it, and the child shuts
them itself: every capability (a child of root keeps them all, and CAP_SYS_RESOURCE
would lift its own file-size limit), and ``connect()`` to a pathname UNIX socket (a
database's, D-Bus, Docker's), which Landlock does not cover: a seccomp filter refuses to
create AF_UNIX sockets (``socketpair`` stays allowed).

Works inside containers that forbid user namespaces (Docker's default profile,
Gradescope), where bubblewrap cannot run.  No binding package is maintained for it on
PyPI, and the interface is three system calls and two structs, so it is called directly.
"""
from __future__ import annotations

import ctypes
import os
import struct

# linux/landlock.h; the syscall numbers are the same on x86-64 and arm64.
_SYS_CREATE_RULESET, _SYS_ADD_RULE, _SYS_RESTRICT_SELF = 444, 445, 446
_CREATE_RULESET_VERSION = 1
_RULE_PATH_BENEATH = 1
_PR_SET_NO_NEW_PRIVS = 38

EXECUTE, WRITE_FILE, READ_FILE, READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
REMOVE_DIR, REMOVE_FILE, MAKE_CHAR, MAKE_DIR = 1 << 4, 1 << 5, 1 << 6, 1 << 7
MAKE_REG, MAKE_SOCK, MAKE_FIFO, MAKE_BLOCK, MAKE_SYM = 1 << 8, 1 << 9, 1 << 10, 1 << 11, 1 << 12
REFER, TRUNCATE, IOCTL_DEV = 1 << 13, 1 << 14, 1 << 15
NET_BIND_TCP, NET_CONNECT_TCP = 1 << 0, 1 << 1
SCOPE_ABSTRACT_UNIX_SOCKET, SCOPE_SIGNAL = 1 << 0, 1 << 1

READ = READ_FILE | READ_DIR
READ_EXEC = READ | EXECUTE
WRITE = (WRITE_FILE | REMOVE_DIR | REMOVE_FILE | MAKE_DIR | MAKE_REG | MAKE_SOCK | MAKE_FIFO
         | MAKE_SYM)


def _libc():
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    return libc


def abi_version() -> int:
    """The kernel's Landlock ABI version; 0 when Landlock is absent or disabled."""
    try:
        version = _libc().syscall(_SYS_CREATE_RULESET, None, ctypes.c_size_t(0),
                                  ctypes.c_uint32(_CREATE_RULESET_VERSION))
    except (OSError, AttributeError):
        return 0
    return max(int(version), 0)


def _fs_rights(abi: int) -> int:
    rights = (1 << 13) - 1  # EXECUTE .. MAKE_SYM: ABI 1
    if abi >= 2:
        rights |= REFER
    if abi >= 3:
        rights |= TRUNCATE
    if abi >= 5:
        rights |= IOCTL_DEV
    return rights


def restrict(read: list[str], read_write: list[str], execute: list[str],
             list_dirs: list[str] = (), devices: list[str] = ()) -> dict:
    """Allow only these paths (and what is beneath them) from now on, for this process and
    every process it starts; deny TCP (ABI 4+) and signals to or abstract sockets of
    processes outside (ABI 6+).  ``list_dirs`` may be listed but their files not read (the
    folder that holds the grader's package).  ``devices`` (the GPUs' device files) may be
    opened for reading and writing and take ioctl calls, as a GPU driver's library does,
    but nothing may be created or removed beside them.  Paths that do not exist are skipped.  Returns what was
    enforced; raises OSError when the kernel refuses."""
    abi = abi_version()
    if abi < 1:
        raise OSError("Landlock is not available on this kernel")
    libc = _libc()
    handled = _fs_rights(abi)
    net = NET_BIND_TCP | NET_CONNECT_TCP if abi >= 4 else 0
    scoped = SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL if abi >= 6 else 0
    attr = struct.pack("=QQQ", handled, net, scoped)[:8 if abi < 4 else 16 if abi < 6 else 24]
    buf = ctypes.create_string_buffer(attr, len(attr))
    fd = libc.syscall(_SYS_CREATE_RULESET, buf, ctypes.c_size_t(len(attr)), ctypes.c_uint32(0))
    if fd < 0:
        raise OSError(ctypes.get_errno(), "landlock_create_ruleset failed")
    try:
        rules = [(p, READ_DIR) for p in list_dirs] + \
            [(p, READ) for p in read] + [(p, READ_EXEC) for p in execute] + \
            [(p, READ | WRITE | (TRUNCATE if abi >= 3 else 0) | (REFER if abi >= 2 else 0))
             for p in read_write] + \
            [(p, READ | WRITE_FILE | (IOCTL_DEV if abi >= 5 else 0)) for p in devices]
        for path, access in rules:
            try:
                pfd = os.open(path, os.O_PATH | os.O_CLOEXEC)
            except OSError:
                continue
            try:
                if not os.path.isdir(path):  # a file takes file rights only
                    access &= EXECUTE | WRITE_FILE | READ_FILE | TRUNCATE | IOCTL_DEV
                rule = ctypes.create_string_buffer(
                    struct.pack("=Qi", access & handled, pfd), 12)
                if libc.syscall(_SYS_ADD_RULE, ctypes.c_int(fd),
                                ctypes.c_int(_RULE_PATH_BENEATH), rule, ctypes.c_uint32(0)) < 0:
                    raise OSError(ctypes.get_errno(), f"landlock_add_rule failed for {path}")
            finally:
                os.close(pfd)
        if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS) failed")
        if libc.syscall(_SYS_RESTRICT_SELF, ctypes.c_int(fd), ctypes.c_uint32(0)) < 0:
            raise OSError(ctypes.get_errno(), "landlock_restrict_self failed")
    finally:
        os.close(fd)
    return {"abi": abi, "tcp_blocked": bool(net), "signals_scoped": bool(scoped),
            "capabilities_dropped": drop_capabilities(libc),
            "unix_sockets_refused": refuse_unix_sockets(libc)}


_PR_CAPBSET_DROP, _PR_CAP_AMBIENT, _PR_CAP_AMBIENT_CLEAR_ALL = 24, 47, 4
_CAPABILITY_VERSION_3 = 0x20080522


def drop_capabilities(libc=None) -> bool:
    """Empty this process's capability sets and its bounding set, so that neither it nor a
    program it runs (even as root) holds any.  True when the effective and bounding sets
    read back empty."""
    libc = libc or _libc()
    try:
        with open("/proc/sys/kernel/cap_last_cap") as f:
            last = int(f.read())
    except (OSError, ValueError):
        last = 63
    for cap in range(last + 1):
        libc.prctl(_PR_CAPBSET_DROP, cap, 0, 0, 0)  # EPERM without CAP_SETPCAP: none to drop
    libc.prctl(_PR_CAP_AMBIENT, _PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
    header = ctypes.create_string_buffer(struct.pack("=Ii", _CAPABILITY_VERSION_3, 0), 8)
    data = ctypes.create_string_buffer(bytes(24), 24)  # effective, permitted, inheritable x2
    libc.capset(header, data)
    try:
        with open("/proc/self/status") as f:
            status = f.read()
    except OSError:  # dropped all the same; only the read-back is not possible here
        return False
    return all(f"{key}:\t0000000000000000" in status for key in ("CapEff", "CapBnd"))


# The seccomp filter: classic BPF over struct seccomp_data {int nr; u32 arch; u64 ip;
# u64 args[6]}.  socket(AF_UNIX, ...) fails with EACCES; everything else is allowed.
_AUDIT_ARCH = {"x86_64": (0xC000003E, 41), "aarch64": (0xC00000B7, 198)}  # arch, socket()
_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER = 22, 2
_RET_ALLOW, _RET_EACCES = 0x7FFF0000, 0x00050000 | 13
_LD_ABS, _JEQ, _RET = 0x20, 0x15, 0x06


def refuse_unix_sockets(libc=None) -> bool:
    """Refuse to create AF_UNIX sockets from now on, for this process and its children
    (``no_new_privs`` must be set).  False where the architecture is not known here."""
    libc = libc or _libc()
    arch = _AUDIT_ARCH.get(os.uname().machine)
    if arch is None:
        return False
    audit_arch, socket_nr = arch
    program = [(_LD_ABS, 0, 0, 4), (_JEQ, 0, 5, audit_arch),      # another ABI: allow
               (_LD_ABS, 0, 0, 0), (_JEQ, 0, 3, socket_nr),       # not socket(): allow
               (_LD_ABS, 0, 0, 16), (_JEQ, 0, 1, 1),              # domain AF_UNIX?
               (_RET, 0, 0, _RET_EACCES), (_RET, 0, 0, _RET_ALLOW)]
    filters = ctypes.create_string_buffer(
        b"".join(struct.pack("=HBBI", *ins) for ins in program), 8 * len(program))
    prog = struct.pack("=HxxxxxxQ", len(program), ctypes.addressof(filters))
    buf = ctypes.create_string_buffer(prog, len(prog))
    if libc.prctl(_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, buf, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_SECCOMP) failed")
    return True
