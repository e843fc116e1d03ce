"""Managed MCP servers: declared in the OAS_CONFIG file, run for as long as `oas serve` runs.

`ManagedMcpServers` starts every declared server (a stdio process or a URL connection),
lists its tools, pings it every `health_interval` seconds and, when it dies or stops
answering, reconnects (restarting a stdio process) with exponential backoff. Which of
them a request gets is decided in `src/tasks/server_tools/managed_mcp.py`.
`states()` is what `/health/detailed` and `oas mcp status` show.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog

from src.core.mcp_config import ManagedServerConfig, load_managed_servers
from src.core.settings import Settings
from src.services.mcp_client import McpConnection, ServerSpec, url_transport

log = structlog.get_logger("oas.mcp.managed")


def spec_for(config: ManagedServerConfig, log_dir: Path | None = None) -> ServerSpec:
    if config.command:
        return ServerSpec(
            name=config.name,
            transport="stdio",
            command=tuple(config.command),
            env=dict(config.env),
            cwd=config.cwd,
            timeout=config.timeout,
            stderr_log=(log_dir / f"{config.name}.log") if log_dir else None,
        )
    url = config.url or ""
    return ServerSpec(
        name=config.name,
        transport=url_transport(url, config.transport),
        url=url,
        headers=dict(config.headers),
        timeout=config.timeout,
    )


@dataclass
class ManagedServer:
    """One server's configuration and what the supervisor knows of it now."""

    config: ManagedServerConfig
    spec: ServerSpec
    state: str = "stopped"  # starting | running | restarting | stopped
    connection: McpConnection | None = None
    tools: list[Any] = field(default_factory=list)
    restarts: int = 0
    failures: int = 0  # consecutive failed starts, for the backoff
    last_error: str | None = None
    since: float = field(default_factory=time.time)
    next_attempt: float | None = None

    def set_state(self, state: str) -> None:
        if state != self.state:
            self.state, self.since = state, time.time()

    def snapshot(self) -> dict[str, Any]:
        return {
            "name": self.config.name,
            "transport": self.spec.transport,
            "where": self.spec.where,
            "offer": self.config.offer,
            "state": self.state,
            "healthy": self.state == "running",
            "tools": [t.name for t in self.tools] if self.state == "running" else [],
            "restarts": self.restarts,
            "last_error": self.last_error,
            "since": self.since,
            "next_attempt": self.next_attempt,
        }


class ManagedMcpServers:
    """Starts, watches, restarts and stops the managed servers (one asyncio task each)."""

    def __init__(
        self,
        configs: list[ManagedServerConfig],
        *,
        log_dir: Path | None = None,
        health_interval: float = 15.0,
        backoff_base: float = 1.0,
        backoff_max: float = 60.0,
    ) -> None:
        self.servers = {c.name: ManagedServer(c, spec_for(c, log_dir)) for c in configs}
        self.health_interval = health_interval
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self._stopping = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._loop: asyncio.AbstractEventLoop | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> ManagedMcpServers:
        """The servers of the OAS_CONFIG file (raises `McpConfigError` for a broken one)."""
        return cls(
            load_managed_servers(settings.config_file), log_dir=settings.data_dir / "mcp-logs"
        )

    def __bool__(self) -> bool:
        return bool(self.servers)

    def start(self) -> None:
        """Start supervising every server (call from inside the running event loop)."""
        self._stopping.clear()
        self._loop = asyncio.get_running_loop()
        for server in self.servers.values():
            server.set_state("starting")
            self._tasks.append(
                asyncio.create_task(
                    self._supervise(server), name=f"mcp-supervisor:{server.config.name}"
                )
            )

    async def wait_started(self, timeout: float) -> None:
        """Wait until no server is still in its first start (for the CLI and tests)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(s.state != "starting" for s in self.servers.values()):
                return
            await asyncio.sleep(0.05)

    async def aclose(self) -> None:
        """Stop every server (stdio processes end) and the supervisors."""
        self._stopping.set()
        tasks, self._tasks = self._tasks, []
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=15.0)
            for task in pending:
                task.cancel()
        for server in self.servers.values():
            if server.connection is not None:
                await server.connection.aclose()
                server.connection = None
            server.set_state("stopped")

    def states(self) -> list[dict[str, Any]]:
        """Every server's state, for `/health/detailed` and `oas mcp status`."""
        return [s.snapshot() for s in self.servers.values()]

    # -- supervision ------------------------------------------------------------------

    def _backoff(self, failures: int) -> float:
        delay = min(self.backoff_max, self.backoff_base * 2 ** max(0, failures - 1))
        return delay * random.uniform(0.8, 1.2)

    async def _pause(self, seconds: float) -> bool:
        """Sleep unless stopping; True if the supervisor should go on."""
        try:
            await asyncio.wait_for(self._stopping.wait(), seconds)
        except TimeoutError:
            return True
        return False

    async def _supervise(self, server: ManagedServer) -> None:
        name = server.config.name
        server.set_state("starting")
        while not self._stopping.is_set():
            connection = McpConnection(server.spec)
            try:
                await connection.open()
                server.tools = await connection.list_tools()
            except Exception as exc:
                await connection.aclose()
                server.failures += 1
                server.last_error = connection.error or str(exc)
                delay = self._backoff(server.failures)
                server.next_attempt = time.time() + delay
                server.set_state("restarting")
                log.warning(
                    "managed MCP server failed to start",
                    server=name,
                    error=server.last_error,
                    retry_in=round(delay, 1),
                )
                if not await self._pause(delay):
                    break
                continue
            server.connection, server.next_attempt = connection, None
            server.set_state("running")
            started = time.monotonic()
            log.info("managed MCP server running", server=name, tools=len(server.tools))
            await self._watch(server, connection)
            server.connection = None
            await connection.aclose()
            if self._stopping.is_set():
                break
            # It was running and died: count a restart; back off only if it keeps dying fast.
            server.restarts += 1
            if time.monotonic() - started > self.backoff_max:
                server.failures = 0
            server.failures += 1
            delay = self._backoff(server.failures)
            server.next_attempt = time.time() + delay
            server.set_state("restarting")
            log.warning(
                "managed MCP server stopped answering; restarting",
                server=name,
                error=server.last_error,
                retry_in=round(delay, 1),
            )
            if not await self._pause(delay):
                break
        server.set_state("stopped")

    async def _watch(self, server: ManagedServer, connection: McpConnection) -> None:
        """Ping until the server fails to answer (or oas stops)."""
        while await self._pause(self.health_interval):
            try:
                await connection.ping()
            except Exception as exc:
                server.last_error = connection.error or f"ping failed: {type(exc).__name__}: {exc}"
                return

    # -- requests ---------------------------------------------------------------------

    def available(
        self, requested: set[str], taken: frozenset[str] | set[str] = frozenset()
    ) -> list[ManagedServer]:
        """The running servers a request gets: the ones it asked for (`*`: all) and those
        offered always, except names its own `mcp_servers` already use.

        Sessions belong to the event loop the servers were started in; a flow running on
        another loop (a replay in the deployment runner's thread) gets none of them."""
        out: list[ManagedServer] = []
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if loop is not self._loop:
            if requested:
                log.warning(
                    "managed MCP servers are not available on this event loop",
                    requested=sorted(requested),
                )
            return out
        for name, server in self.servers.items():
            wanted = server.config.offer == "always" or "*" in requested or name in requested
            if not wanted or name in taken:
                continue
            if server.state != "running" or server.connection is None:
                log.warning(
                    "managed MCP server asked for but not running", server=name, state=server.state
                )
                continue
            out.append(server)
        return out


_current: ManagedMcpServers | None = None


def install(servers: ManagedMcpServers | None) -> None:
    """Make `servers` the process's managed servers (the runtime does this at start)."""
    global _current
    _current = servers


def current() -> ManagedMcpServers | None:
    return _current
