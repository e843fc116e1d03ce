"""Running one command in a sandbox: wall-time limit, capped output, nothing left behind.

The command runs in a new session (its own process group); on timeout, on too much output,
or once it has finished, the whole group is killed. In the namespace tiers that also takes
down the pid namespace, and with it every process the command started. Output is read as it
comes, so a chatty command never blocks on a full pipe, and is cut at the cap (the command
is stopped then: output past the cap would only be thrown away).
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from src.sandbox.config import Limits
from src.sandbox.isolation import Isolation
from src.sandbox.watchdog import DiskWatch, Watchdog
from src.sandbox.workspace import Workspace

READ_CHUNK = 65536
DRAIN_GRACE = 1.0  # seconds to collect output after the command ended


def _drop_to(user: int, group: int | None) -> Callable[[], None]:
    """In the child, before exec: no supplementary groups, then the group, then the user."""

    def drop() -> None:
        os.setgroups([])
        os.setgid(group if group is not None else user)
        os.setuid(user)

    return drop


@dataclass(slots=True)
class CommandResult:
    stdout: str
    stderr: str
    return_code: int
    timed_out: bool = False
    output_exceeded: bool = False
    #: the sandbox itself failed to start (not the command): the tool is unavailable
    setup_error: str | None = None
    seconds: float = 0.0
    #: why oas stopped it before it ended (memory or disk past its limit), in words
    stopped: str | None = None


async def run_command(
    isolation: Isolation,
    workspace: Workspace,
    argv: list[str],
    limits: Limits,
    *,
    stdin: bytes | None = None,
    disk: DiskWatch | None = None,
) -> CommandResult:
    file_bytes = disk.file_limit(limits.max_file_bytes) if disk else None
    spawn = isolation.spawn(workspace, argv, max_file_bytes=file_bytes)
    started = time.monotonic()
    loop = asyncio.get_running_loop()
    try:
        transport, protocol = await loop.subprocess_exec(
            lambda: _Protocol(limit=READ_CHUNK, loop=loop),
            *spawn.argv,
            stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=spawn.env,
            pass_fds=spawn.pass_fds,
            start_new_session=True,
            # Not user=/group=: uvloop (the server's event loop) does not take them.
            preexec_fn=_drop_to(spawn.user, spawn.group) if spawn.user is not None else None,
        )
    except OSError as exc:
        _close(spawn.close_after_start)
        _close([spawn.status_read] if spawn.status_read is not None else [])
        return CommandResult("", "", -1, setup_error=f"cannot start the sandbox: {exc}")
    _close(spawn.close_after_start)
    proc = asyncio.subprocess.Process(transport, protocol, loop)

    budget = _Budget(limits.max_output_bytes)
    out, err = bytearray(), bytearray()
    readers = [
        asyncio.create_task(_read(proc.stdout, out, budget)),
        asyncio.create_task(_read(proc.stderr, err, budget)),
    ]
    helpers: list[asyncio.Task[Any]] = list(readers)
    if stdin is not None:
        helpers.append(asyncio.create_task(_feed(proc, stdin)))
    # not proc.wait(): it also waits for the pipes, which a background child may hold
    exited = asyncio.create_task(protocol.exited.wait())
    overflow = asyncio.create_task(budget.exceeded.wait())
    watch = asyncio.create_task(Watchdog(limits.memory_bytes, disk).run(proc.pid))
    helpers += [exited, overflow, watch]
    try:
        done, _ = await asyncio.wait(
            {exited, overflow, watch}, timeout=limits.timeout, return_when=asyncio.FIRST_COMPLETED
        )
        timed_out = not done
        stopped = watch.result() if watch in done else None
        _kill_group(proc.pid)  # the command, or what it left running in the background
        await exited
        return_code = transport.get_returncode()
        _, pending = await asyncio.wait(readers, timeout=DRAIN_GRACE)
    except BaseException:  # cancelled (the client went away): the command goes too
        _kill_group(proc.pid)
        raise
    finally:
        for task in helpers:  # a reader still waiting: something outside the group holds
            task.cancel()  # the pipe (rlimits tier); its output is not ours to wait for
        transport.close()
        if spawn.status_read is not None and not exited.done():
            _close([spawn.status_read])

    status = _read_status(spawn.status_read)
    stderr_text = err.decode("utf-8", errors="replace")
    setup_error = spawn.setup_error(status, stderr_text)
    return_code = -1 if return_code is None else return_code
    return CommandResult(
        stdout=out.decode("utf-8", errors="replace"),
        stderr=stderr_text,
        return_code=return_code if return_code >= 0 else 128 - return_code,
        timed_out=timed_out,
        output_exceeded=budget.exceeded.is_set(),
        setup_error=setup_error.strip() if setup_error else None,
        seconds=time.monotonic() - started,
        stopped=stopped,
    )


class _Protocol(asyncio.subprocess.SubprocessStreamProtocol):
    """Says when the process has exited, whatever its pipes are doing."""

    def __init__(self, limit: int, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(limit=limit, loop=loop)
        self.exited = asyncio.Event()

    def process_exited(self) -> None:
        super().process_exited()
        self.exited.set()


class _Budget:
    """Bytes of output left for both streams together."""

    def __init__(self, limit: int) -> None:
        self.left = limit
        self.exceeded = asyncio.Event()

    def take(self, chunk: bytes) -> bytes:
        if len(chunk) > self.left:
            kept = chunk[: self.left]
            self.left = 0
            self.exceeded.set()
            return kept
        self.left -= len(chunk)
        return chunk


async def _read(stream: asyncio.StreamReader | None, sink: bytearray, budget: _Budget) -> None:
    if stream is None:
        return
    while True:
        chunk = await stream.read(READ_CHUNK)
        if not chunk:
            return
        if not budget.exceeded.is_set():
            sink += budget.take(chunk)


async def _feed(proc: asyncio.subprocess.Process, data: bytes) -> None:
    assert proc.stdin is not None
    try:
        proc.stdin.write(data)
        await proc.stdin.drain()
        proc.stdin.close()
    except (BrokenPipeError, ConnectionResetError):
        pass


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _read_status(fd: int | None) -> bytes:
    if fd is None:
        return b""
    try:
        os.set_blocking(fd, False)
        return os.read(fd, 65536)
    except (BlockingIOError, OSError):
        return b""
    finally:
        os.close(fd)


def _close(fds: list[int]) -> None:
    for fd in fds:
        try:
            os.close(fd)
        except OSError:
            pass
