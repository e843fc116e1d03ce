"""Child processes that end with `oas`, even when `oas` is killed with SIGKILL.

Linux's parent-death signal (`PR_SET_PDEATHSIG`) is set in the child between fork and
exec, after any switch of user (a change of credentials clears it). It fires when the
*thread* that started the child ends, so children are started from threads that live as
long as they do (the main thread, or the thread that watches the child).
"""

from __future__ import annotations

import ctypes
import os
import signal
from collections.abc import Callable

PR_SET_PDEATHSIG = 1


def _load_prctl() -> Callable[..., int] | None:
    try:
        return ctypes.CDLL("libc.so.6", use_errno=True).prctl
    except (OSError, AttributeError):  # not Linux: the pid file takes over instead
        return None


# Looked up here, not between fork and exec, where another thread may hold the loader's lock.
_prctl = _load_prctl()


def die_with_parent(sig: int = signal.SIGTERM) -> Callable[[], None] | None:
    """A `preexec_fn`: deliver `sig` to the child when its parent dies (None off Linux)."""
    if _prctl is None:
        return None
    prctl, parent, number = _prctl, os.getpid(), int(sig)

    def preexec() -> None:
        prctl(PR_SET_PDEATHSIG, number)
        if os.getppid() != parent:  # the parent died before the signal was armed
            os.kill(os.getpid(), number)

    return preexec


def alive(pid: int) -> bool:
    """Whether a process with this id exists (and is not a zombie)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return stat.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except (OSError, IndexError):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True


def command_line(pid: int) -> str:
    """The process's arguments joined by spaces ('' when it is gone)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            return cmdline.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""
