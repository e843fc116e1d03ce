"""A small seccomp filter every tier installs: the system calls a sandbox must not make.

- `fallocate` fails with EOPNOTSUPP: it reserves gigabytes in a millisecond, faster than any
  watch of the workspace can see (`posix_fallocate` then falls back to writing, which the
  disk watchdog can keep up with);
- new user namespaces (`unshare` or `clone` with CLONE_NEWUSER) fail with EPERM, and
  `clone3`, whose flags a filter cannot read, with ENOSYS (glibc falls back to `clone`):
  a user namespace is where a command would get the capabilities to try kernel bugs;
- system calls of another architecture (x32, i386) fail with ENOSYS, so none of the above
  is reached by another number.

The filter is classic BPF, built here by hand (no libseccomp): `program()` returns the raw
`struct sock_filter` array, which bubblewrap takes with `--seccomp FD` and the launcher
installs with `prctl(PR_SET_SECCOMP)`. None on an architecture this module does not know.
"""

from __future__ import annotations

import platform
import struct

# BPF instruction classes and modes
_LD_W_ABS = 0x00 | 0x00 | 0x20  # BPF_LD | BPF_W | BPF_ABS
_JEQ_K = 0x05 | 0x10 | 0x00  # BPF_JMP | BPF_JEQ | BPF_K
_JGE_K = 0x05 | 0x30 | 0x00  # BPF_JMP | BPF_JGE | BPF_K
_JSET_K = 0x05 | 0x40 | 0x00  # BPF_JMP | BPF_JSET | BPF_K
_RET_K = 0x06 | 0x00  # BPF_RET | BPF_K

_ALLOW = 0x7FFF0000
_ERRNO = 0x00050000
EPERM, ENOSYS, EOPNOTSUPP = 1, 38, 95
CLONE_NEWUSER = 0x10000000
_X32_BIT = 0x40000000

# offsets in struct seccomp_data: nr, arch, instruction pointer, args[0]
_NR, _ARCH, _ARG0_LOW = 0, 4, 16

#: machine -> (AUDIT_ARCH, fallocate, unshare, clone, clone3)
_ARCHES = {
    "x86_64": (0xC000003E, 285, 272, 56, 435),
    "aarch64": (0xC00000B7, 47, 97, 220, 435),
}


def _op(code: int, k: int, jt: int = 0, jf: int = 0) -> bytes:
    return struct.pack("=HBBI", code, jt, jf, k)


def program(machine: str | None = None) -> bytes | None:
    """The filter as `struct sock_filter[]` bytes, or None for an unknown architecture."""
    numbers = _ARCHES.get(machine or platform.machine())
    if numbers is None:
        return None
    arch, fallocate, unshare, clone, clone3 = numbers
    deny = _ERRNO
    ops = [
        _op(_LD_W_ABS, _ARCH),  # 0
        _op(_JEQ_K, arch, jt=1),  # 1: native -> 3
        _op(_RET_K, deny | ENOSYS),  # 2
        _op(_LD_W_ABS, _NR),  # 3
        _op(_JGE_K, _X32_BIT, jt=0, jf=1),  # 4: x32 numbers -> 5, else 6
        _op(_RET_K, deny | ENOSYS),  # 5
        _op(_JEQ_K, fallocate, jt=0, jf=1),  # 6
        _op(_RET_K, deny | EOPNOTSUPP),  # 7
        _op(_JEQ_K, clone3, jt=0, jf=1),  # 8
        _op(_RET_K, deny | ENOSYS),  # 9
        _op(_JEQ_K, unshare, jt=1),  # 10: -> 12
        _op(_JEQ_K, clone, jt=0, jf=4),  # 11: neither -> 16
        _op(_LD_W_ABS, _ARG0_LOW),  # 12: the flags
        _op(_JSET_K, CLONE_NEWUSER, jt=0, jf=1),  # 13
        _op(_RET_K, deny | EPERM),  # 14
        _op(_RET_K, _ALLOW),  # 15
        _op(_RET_K, _ALLOW),  # 16
    ]
    return b"".join(ops)
