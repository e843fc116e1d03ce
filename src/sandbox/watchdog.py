"""Limits over a whole command rather than one process, checked while it runs.

Resource limits bind each process alone: four processes of one command may each use the
memory limit, and files written in parallel each stay under RLIMIT_FSIZE while together
filling the disk. The watchdog looks every `INTERVAL` seconds at

- the memory of every process the command started (its process tree: what they hold
  themselves, anonymous resident pages; shared library pages are not counted), and
- the disk use of the workspace, and of all workspaces together,

and ends the command's processes when one is past its limit, saying which. Works in every
tier (it needs nothing of the kernel but /proc). How far past a limit a command gets is
what it can allocate or write in one interval; `fallocate`, which would be instant, is
refused by the seccomp filter, and RLIMIT_FSIZE holds each file to what is left.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass

INTERVAL = 0.1
PAGE = os.sysconf("SC_PAGE_SIZE")
MB = 1024 * 1024
#: past a disk limit (or past the use a command started with, when that was over it: to
#: clean up) a command may still write this much: directories and metadata take blocks too
DISK_SLACK = MB


def process_tree(root: int) -> list[int]:
    """`root` and every process descended from it, found through each one's parent in /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as source:
                stat = source.read()
        except OSError:
            continue
        # "pid (comm) state ppid ...": comm may hold spaces and parentheses
        fields = stat[stat.rfind(b")") + 2 :].split()
        if len(fields) > 1:
            children.setdefault(int(fields[1]), []).append(int(entry))
    tree, stack = [], [root]
    while stack:
        pid = stack.pop()
        tree.append(pid)
        stack.extend(children.get(pid, ()))
    return tree


def anonymous_bytes(pids: list[int]) -> int:
    """Resident memory of these processes that is their own (resident minus shared pages),
    and what their memory files hold (`memfd_create`: memory that no process maps, so no
    resident count shows it)."""
    total = 0
    memfds: set[tuple[int, int]] = set()
    for pid in pids:
        try:
            with open(f"/proc/{pid}/statm", "rb") as source:
                fields = source.read().split()
        except OSError:
            continue
        total += max(0, int(fields[1]) - int(fields[2])) * PAGE
        total += _memfd_bytes(pid, memfds)
    return total


def _memfd_bytes(pid: int, seen: set[tuple[int, int]]) -> int:
    """Blocks of the memory files `pid` holds open that no earlier process counted."""
    total = 0
    try:
        with os.scandir(f"/proc/{pid}/fd") as entries:
            for entry in entries:
                try:
                    if not os.readlink(entry.path).startswith("/memfd:"):
                        continue
                    st = os.stat(entry.path)
                except OSError:
                    continue
                if (st.st_dev, st.st_ino) not in seen:
                    seen.add((st.st_dev, st.st_ino))
                    total += st.st_blocks * 512
    except OSError:
        pass
    return total


@dataclass(slots=True)
class DiskWatch:
    """The workspace's quota and the total over all workspaces, for one command."""

    usage: Callable[[], int]  # this workspace, now
    quota: int
    total: Callable[[int], int]  # all workspaces, given this one's usage now
    total_quota: int
    start_usage: int = 0
    start_total: int = 0

    def over(self) -> str | None:
        used = self.usage()
        if used > max(self.quota, self.start_usage) + DISK_SLACK:
            return (
                f"the command was stopped: the workspace went past its "
                f"{self.quota // MB} MB quota ({used // MB} MB); delete files to make room"
            )
        total = self.total(used)
        if total > max(self.total_quota, self.start_total) + DISK_SLACK:
            return (
                f"the command was stopped: the workspaces on this server together went "
                f"past their {self.total_quota // MB} MB limit"
            )
        return None

    def file_limit(self, max_file_bytes: int) -> int:
        """RLIMIT_FSIZE for the command: no single file past what is left (a MB at least)."""
        left = min(self.quota - self.start_usage, self.total_quota - self.start_total)
        return max(MB, min(max_file_bytes, left))


class Watchdog:
    def __init__(self, memory_bytes: int, disk: DiskWatch | None) -> None:
        self.memory_bytes = memory_bytes
        self.disk = disk
        #: the largest memory total seen (for tests and the result)
        self.peak_memory = 0

    def check(self, root: int) -> str | None:
        """One look; the reason to stop, or None. Ends the processes itself when over."""
        tree = process_tree(root)
        used = anonymous_bytes(tree)
        self.peak_memory = max(self.peak_memory, used)
        reason = None
        if used > self.memory_bytes:
            reason = (
                f"the command was stopped: its processes together used more than "
                f"{self.memory_bytes // MB} MB of memory ({used // MB} MB)"
            )
        elif self.disk is not None:
            reason = self.disk.over()
        if reason:
            kill_tree(process_tree(root))
        return reason

    async def run(self, root: int) -> str:
        """Look every INTERVAL until a limit is crossed; returns why (cancel to stop).

        A look at a big workspace (a node_modules of 100,000 files) takes a while: the
        pause after it is then nine times as long, so watching stays under a tenth of a core.
        """
        pause = INTERVAL
        while True:
            await asyncio.sleep(pause)
            began = time.perf_counter()
            reason = await asyncio.to_thread(self.check, root)
            if reason:
                return reason
            pause = max(INTERVAL, 9 * (time.perf_counter() - began))


def kill_tree(pids: list[int]) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
