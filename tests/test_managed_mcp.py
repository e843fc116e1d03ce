"""Managed MCP servers: declared in the config file, started, offered to the requests that
opt in, restarted when they die, stopped at shutdown; their state readable at all times."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from src.core.mcp_config import McpConfigError, load_managed_servers, parse_mcp_servers
from src.core.settings import Settings
from src.schemas.anthropic import MessagesRequest
from src.services.managed_mcp import ManagedMcpServers, install
from src.tasks.server_tools import ToolCall, build_toolbox
from src.tasks.server_tools.managed_mcp import opt_in_from_header
from tests.support.mcp_process import ROOT, STDIO_COMMAND, McpHttpServer


def config(**servers: dict[str, Any]) -> list[Any]:
    return parse_mcp_servers([{"name": name, **spec} for name, spec in servers.items()])


@pytest.fixture
async def managed() -> AsyncIterator[ManagedMcpServers]:
    servers = ManagedMcpServers(
        config(
            calc={"command": list(STDIO_COMMAND), "cwd": str(ROOT), "timeout": 15},
            always={
                "command": list(STDIO_COMMAND),
                "cwd": str(ROOT),
                "offer": "always",
                "allowed_tools": ["echo"],
                "timeout": 15,
            },
        ),
        health_interval=0.2,
        backoff_base=0.1,
        backoff_max=1.0,
    )
    servers.start()
    await servers.wait_started(30)
    install(servers)
    yield servers
    install(None)
    await servers.aclose()


def request(**extra: Any) -> MessagesRequest:
    return MessagesRequest.model_validate(
        {
            "model": "sonnet",
            "max_tokens": 10,
            "messages": [{"role": "user", "content": "hi"}],
            **extra,
        }
    )


async def call(toolbox: Any, function: str, arguments: dict[str, Any]) -> Any:
    await toolbox.prepare()
    tool = toolbox.find(function)
    assert tool is not None, function
    return await tool.run(ToolCall("mcptoolu_1", function, arguments))


async def eventually(check: Any, timeout: float = 20.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


async def test_servers_run_and_requests_opt_in(managed: ManagedMcpServers) -> None:
    states = {s["name"]: s for s in managed.states()}
    assert states["calc"]["state"] == "running" and states["calc"]["healthy"]
    assert "add" in states["calc"]["tools"] and states["calc"]["transport"] == "stdio"

    plain = build_toolbox(request(), Settings())
    assert plain.names() == {"mcp__always__echo"}  # offer: always, allow list respected

    body: dict[str, Any] = {
        "model": "sonnet",
        "max_tokens": 10,
        "messages": [{"role": "user", "content": "hi"}],
    }
    opt_in_from_header(body, "calc")  # what the coordinator does with `x-oas-mcp: calc`
    toolbox = build_toolbox(MessagesRequest.model_validate(body), Settings())
    assert "mcp__calc__add" in toolbox.names()
    outcome = await call(toolbox, "mcp__calc__add", {"a": 1, "b": 2})
    assert outcome.blocks[0]["content"] == [{"type": "text", "text": "3"}]
    assert outcome.blocks[0]["is_error"] is False
    await toolbox.aclose()  # lends the connection: the managed server stays up
    assert managed.servers["calc"].state == "running"

    everything = build_toolbox(request(oas_mcp=["*"]), Settings())
    assert {"mcp__calc__pid", "mcp__always__echo"} <= everything.names()


async def test_a_dead_server_is_restarted(managed: ManagedMcpServers) -> None:
    toolbox = build_toolbox(request(oas_mcp="calc"), Settings())
    first_pid = (await call(toolbox, "mcp__calc__pid", {})).for_model
    dying = await call(toolbox, "mcp__calc__exit", {})
    assert dying.is_error  # the call's process went away: an error result, not a crash

    server = managed.servers["calc"]
    await eventually(lambda: server.restarts >= 1 and server.state == "running")
    assert server.last_error
    toolbox = build_toolbox(request(oas_mcp="calc"), Settings())
    second_pid = (await call(toolbox, "mcp__calc__pid", {})).for_model
    assert second_pid != first_pid
    assert managed.states()[0]["restarts"] >= 1


async def test_shutdown_stops_stdio_processes() -> None:
    servers = ManagedMcpServers(
        config(calc={"command": list(STDIO_COMMAND), "cwd": str(ROOT)}), health_interval=5
    )
    servers.start()
    await servers.wait_started(30)
    install(servers)
    toolbox = build_toolbox(request(oas_mcp=["calc"]), Settings())
    pid = int((await call(toolbox, "mcp__calc__pid", {})).for_model)
    install(None)
    await servers.aclose()
    assert servers.states()[0]["state"] == "stopped"
    await eventually(lambda: not _alive(pid), 10)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie child counts as gone
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


async def test_a_server_that_cannot_start_backs_off_and_is_not_offered() -> None:
    servers = ManagedMcpServers(
        config(broken={"command": [sys.executable, "-c", "raise SystemExit(1)"], "timeout": 5}),
        backoff_base=0.2,
        backoff_max=0.5,
    )
    servers.start()
    install(servers)
    try:
        await eventually(lambda: servers.servers["broken"].failures >= 2, 30)
        [state] = servers.states()
        assert state["state"] == "restarting" and not state["healthy"]
        assert state["last_error"] and state["next_attempt"]
        assert build_toolbox(request(oas_mcp=["broken"]), Settings()).names() == set()
    finally:
        install(None)
        await servers.aclose()


async def test_url_servers_are_managed_too() -> None:
    http = McpHttpServer("http").start()
    servers = ManagedMcpServers(config(remote={"url": http.url, "offer": "always"}))
    servers.start()
    await servers.wait_started(20)
    install(servers)
    try:
        assert servers.states()[0]["transport"] == "streamable_http"
        toolbox = build_toolbox(request(), Settings())  # loopback: trusted, operator's config
        outcome = await call(toolbox, "mcp__remote__echo", {"text": "hello"})
        assert outcome.for_model == "hello"
    finally:
        install(None)
        await servers.aclose()
        http.stop()


def test_config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACKER_TOKEN", "tok-123")
    path = tmp_path / "oas.yaml"
    path.write_text(
        "fallbacks: {big: [openai/gpt-4o]}\n"  # other sections are other readers' business
        "mcp_servers:\n"
        "  - name: files\n"
        "    command: npx -y @modelcontextprotocol/server-filesystem /srv\n"
        "    env: {LOG_LEVEL: warn}\n"
        "  - name: tracker\n"
        "    url: https://mcp.example.com/sse\n"
        "    headers: {Authorization: 'Bearer ${TRACKER_TOKEN}'}\n"
        "    offer: always\n"
    )
    files, tracker = load_managed_servers(path)
    assert files.command == ["npx", "-y", "@modelcontextprotocol/server-filesystem", "/srv"]
    assert tracker.headers == {"Authorization": "Bearer tok-123"}
    assert "tok-123" not in repr(tracker)
    servers = ManagedMcpServers([files, tracker])
    assert [s["transport"] for s in servers.states()] == ["stdio", "sse"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("mcp_servers: {a: 1}", "must be a list"),
        ("mcp_servers:\n  - name: a\n", "either `command`"),
        ("mcp_servers:\n  - {name: a, command: x, url: 'http://x'}\n", "either `command`"),
        ("mcp_servers:\n  - {name: 'bad name', command: x}\n", "name"),
        ("mcp_servers:\n  - {name: a, command: x}\n  - {name: a, command: y}\n", "unique"),
        (
            "mcp_servers:\n  - {name: a, url: 'http://x', headers: {A: '${OAS_TEST_UNSET_VAR}'}}\n",
            "OAS_TEST_UNSET_VAR",
        ),
    ],
)
def test_config_errors_name_the_problem(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "oas.yaml"
    path.write_text(text)
    with pytest.raises(McpConfigError) as error:
        load_managed_servers(path)
    assert message in str(error.value) and str(path) in str(error.value)
