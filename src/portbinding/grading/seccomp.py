"""The grading sandbox's seccomp filter, compiled by libseccomp (through ctypes).

bubblewrap loads a compiled BPF program (``bwrap --seccomp FD``) just before it starts the
kernel; every process of the sandbox inherits it and cannot remove it. The filter allows
everything a Python kernel does and refuses, with EPERM, the system calls a graded notebook
never needs and an attacker would reach for:

* kernel keyrings (``add_key``, ``keyctl``, ``request_key``): keys outlive processes and are
  per uid, so a key left behind would reach the next sandbox given that uid;
* new namespaces (``unshare``, ``setns``, ``clone`` with any ``CLONE_NEW*`` flag; ``clone3``
  answers ENOSYS so that the C library falls back to ``clone``, whose flags can be checked):
  a user namespace gives back the capabilities the sandbox dropped;
* mounts, ``chroot``, ``pivot_root`` and the new mount API;
* tracing and other processes' memory (``ptrace``, ``process_vm_*``, ``kcmp``, ``pidfd_getfd``);
* ``bpf``, ``perf_event_open``, ``userfaultfd``, ``io_uring_*`` (large kernel attack surface);
* the machine itself: modules, ``kexec``, ``reboot``, swap, clocks, ``syslog``, ``acct``,
  quotas, file handles (``open_by_handle_at``), port I/O;
* ``ioctl(TIOCSTI)``/``ioctl(TIOCLINUX)``: typing into a terminal the kernel inherited.

Why libseccomp: it is the library Docker, Podman, systemd and Flatpak generate their filters
with; it knows each architecture's system call numbers and rejects calls from other ABIs
(i386, x32) itself -- the usual mistake of hand-written BPF. Debian ships it as
``libseccomp2`` (a dependency of runc, so of docker.io); its Python bindings are not on PyPI,
so the five C functions needed are called through ctypes. Standard library only: the jail
(root) builds the filter before it drops privileges.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
from dataclasses import dataclass

SCMP_ACT_ALLOW = 0x7FFF0000
SCMP_CMP_MASKED_EQ = 7
TIOCSTI, TIOCLINUX = 0x5412, 0x541C
CLONE_NEW_FLAGS = {
    "CLONE_NEWTIME": 0x00000080,
    "CLONE_NEWNS": 0x00020000,
    "CLONE_NEWCGROUP": 0x02000000,
    "CLONE_NEWUTS": 0x04000000,
    "CLONE_NEWIPC": 0x08000000,
    "CLONE_NEWUSER": 0x10000000,
    "CLONE_NEWPID": 0x20000000,
    "CLONE_NEWNET": 0x40000000,
}
# Refused outright (EPERM). Names unknown on this architecture are skipped by libseccomp.
DENIED = (
    # keyrings
    "add_key", "keyctl", "request_key",
    # namespaces and mounts
    "unshare", "setns", "mount", "umount2", "pivot_root", "chroot", "move_mount", "open_tree",
    "fsopen", "fsconfig", "fsmount", "fspick", "mount_setattr",
    # other processes
    "ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "pidfd_getfd",
    # large kernel attack surface
    "bpf", "perf_event_open", "userfaultfd", "io_uring_setup", "io_uring_enter", "io_uring_register",
    # the machine
    "init_module", "finit_module", "delete_module", "kexec_load", "kexec_file_load", "reboot",
    "swapon", "swapoff", "syslog", "acct", "quotactl", "quotactl_fd", "settimeofday",
    "clock_settime", "clock_adjtime", "name_to_handle_at", "open_by_handle_at", "iopl", "ioperm",
    "lookup_dcookie", "vhangup", "personality",
)  # fmt: skip


class SeccompUnavailable(RuntimeError):
    """libseccomp is missing, or refused to build the filter."""


class _ArgCmp(ctypes.Structure):
    _fields_ = [
        ("arg", ctypes.c_uint),
        ("op", ctypes.c_int),
        ("datum_a", ctypes.c_uint64),
        ("datum_b", ctypes.c_uint64),
    ]


@dataclass(frozen=True)
class _Rule:
    syscall: str
    errno_value: int
    arg: int | None = None  # compare this argument ...
    mask: int = 0  # ... masked with this ...
    value: int = 0  # ... to this value


def rules() -> list[_Rule]:
    """Every rule of the filter (what ``describe`` lists and ``build`` compiles)."""
    found = [_Rule(name, errno.EPERM) for name in DENIED]
    found += [_Rule("clone", errno.EPERM, 0, flag, flag) for flag in CLONE_NEW_FLAGS.values()]
    found.append(_Rule("clone3", errno.ENOSYS))  # its flags sit in memory a filter cannot read
    # The request is an int: compare the low 32 bits only, like the kernel does.
    found += [_Rule("ioctl", errno.EPERM, 1, 0xFFFFFFFF, request) for request in (TIOCSTI, TIOCLINUX)]
    return found


def _library() -> ctypes.CDLL:
    name = ctypes.util.find_library("seccomp") or "libseccomp.so.2"
    try:
        lib = ctypes.CDLL(name, use_errno=True)
    except OSError as error:
        raise SeccompUnavailable(f"libseccomp is not installed ({error})") from None
    lib.seccomp_init.restype = ctypes.c_void_p
    lib.seccomp_init.argtypes = [ctypes.c_uint32]
    lib.seccomp_syscall_resolve_name.restype = ctypes.c_int
    lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
    lib.seccomp_rule_add_array.restype = ctypes.c_int
    lib.seccomp_rule_add_array.argtypes = [
        ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int, ctypes.c_uint, ctypes.POINTER(_ArgCmp)]  # fmt: skip
    lib.seccomp_export_bpf.restype = ctypes.c_int
    lib.seccomp_export_bpf.argtypes = [ctypes.c_void_p, ctypes.c_int]
    lib.seccomp_release.restype = None
    lib.seccomp_release.argtypes = [ctypes.c_void_p]
    return lib


def build() -> bytes:
    """The compiled filter (a BPF program for this machine's architecture), for ``bwrap --seccomp``."""
    lib = _library()
    context = lib.seccomp_init(SCMP_ACT_ALLOW)
    if not context:
        raise SeccompUnavailable("seccomp_init failed")
    try:
        for rule in rules():
            number = lib.seccomp_syscall_resolve_name(rule.syscall.encode())
            if number < 0:
                continue  # not a system call on this architecture
            action = 0x00050000 | rule.errno_value  # SCMP_ACT_ERRNO(errno)
            if rule.arg is None:
                code = lib.seccomp_rule_add_array(context, action, number, 0, None)
            else:
                compare = _ArgCmp(rule.arg, SCMP_CMP_MASKED_EQ, rule.mask, rule.value)
                code = lib.seccomp_rule_add_array(context, action, number, 1, ctypes.byref(compare))
            if code < 0:
                raise SeccompUnavailable(
                    f"libseccomp refused the rule for {rule.syscall} ({os.strerror(-code)})"
                )
        memory = os.memfd_create("portbinding-seccomp", os.MFD_CLOEXEC)
        try:
            code = lib.seccomp_export_bpf(context, memory)
            if code < 0:
                raise SeccompUnavailable(f"seccomp_export_bpf failed ({os.strerror(-code)})")
            size = os.lseek(memory, 0, os.SEEK_END)
            program = os.pread(memory, size, 0)
        finally:
            os.close(memory)
        return program
    finally:
        lib.seccomp_release(context)
