"""The MCP connector: a request's `mcp_servers` reach real MCP servers (FastMCP, over
Streamable HTTP and SSE on loopback), their tools are offered under collision-free names,
calls come back as Anthropic's `mcp_tool_use` / `mcp_tool_result` blocks, failures as
`is_error` results, and the authorization token never leaves memory."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
from anthropic.types.beta import BetaMCPToolResultBlock, BetaMCPToolUseBlock

from src.core.errors import AnthropicError
from src.core.settings import Settings
from src.schemas.anthropic import MessagesRequest
from src.services.mcp_client import MAX_FUNCTION_NAME, function_name
from src.tasks.server_tools import Toolbox, ToolCall, build_toolbox
from src.tasks.server_tools.mcp_connector import McpServerTool
from src.tracking.payloads import redact
from tests.support.mcp_process import McpHttpServer
from tests.support.mcp_server import authorization_digest

TOKEN = "mcp-token-SENTINEL-9f8e7d"


@pytest.fixture(scope="module")
def http_server() -> Iterator[McpHttpServer]:
    server = McpHttpServer("http").start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def sse_server() -> Iterator[McpHttpServer]:
    server = McpHttpServer("sse").start()
    yield server
    server.stop()


def request_with(servers: list[dict[str, Any]]) -> MessagesRequest:
    return MessagesRequest.model_validate(
        {
            "model": "sonnet",
            "max_tokens": 100,
            "messages": [{"role": "user", "content": "use the tools"}],
            "mcp_servers": servers,
        }
    )


SETTINGS = Settings(mcp_allow_hosts=["127.0.0.1"], mcp_timeout=10.0)


async def prepared(servers: list[dict[str, Any]], settings: Settings = SETTINGS) -> Toolbox:
    toolbox = build_toolbox(request_with(servers), settings)
    await toolbox.prepare()
    return toolbox


async def call(
    toolbox: Toolbox, function: str, arguments: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any], Any]:
    tool = toolbox.find(function)
    assert tool is not None, function
    call = ToolCall(f"{tool.use_id_prefix}01", function, arguments)
    outcome = await tool.run(call)
    [result] = outcome.blocks
    return tool.use_block(call), result, outcome


@pytest.mark.parametrize("transport", ["http", "sse"])
async def test_tools_are_offered_and_called(transport: str, request: pytest.FixtureRequest) -> None:
    server: McpHttpServer = request.getfixturevalue(f"{transport}_server")
    toolbox = await prepared([{"type": "url", "url": server.url, "name": "calc"}])
    try:
        names = toolbox.names()
        assert {"mcp__calc__add", "mcp__calc__echo", "mcp__calc__fail"} <= names
        [add] = [f for f in toolbox.functions() if f["function"]["name"] == "mcp__calc__add"]
        assert add["function"]["parameters"]["required"] == ["a", "b"]
        assert "Add two integers" in add["function"]["description"]

        use, result, outcome = await call(toolbox, "mcp__calc__add", {"a": 2, "b": 40})
        assert BetaMCPToolUseBlock.model_validate(use)
        assert use == {
            "type": "mcp_tool_use",
            "id": "mcptoolu_01",
            "name": "add",
            "server_name": "calc",
            "input": {"a": 2, "b": 40},
        }
        assert BetaMCPToolResultBlock.model_validate(result)
        assert result == {
            "type": "mcp_tool_result",
            "tool_use_id": "mcptoolu_01",
            "is_error": False,
            "content": [{"type": "text", "text": "42"}],
        }
        assert outcome.for_model == "42" and not outcome.is_error
    finally:
        await toolbox.aclose()


async def test_tool_errors_are_error_results(http_server: McpHttpServer) -> None:
    toolbox = await prepared([{"type": "url", "url": http_server.url, "name": "calc"}])
    try:
        _, result, outcome = await call(toolbox, "mcp__calc__fail", {"reason": "for the test"})
        assert result["is_error"] is True and outcome.is_error
        assert "failed for the test" in result["content"][0]["text"]
        # Arguments the tool rejects are an error result too, not an exception.
        _, result, _ = await call(toolbox, "mcp__calc__add", {"a": "x"})
        assert result["is_error"] is True
        # Non-text content is described, since mcp_tool_result holds text blocks.
        _, result, _ = await call(toolbox, "mcp__calc__image", {})
        assert result["content"][0]["text"].startswith("[image image/png")
    finally:
        await toolbox.aclose()


async def test_a_server_that_died_gives_error_results() -> None:
    """Bounded by the MCP timeout: the call is an error result, not a hang or a 500."""
    server = McpHttpServer("http").start()
    toolbox = await prepared(
        [{"type": "url", "url": server.url, "name": "calc"}],
        Settings(mcp_allow_hosts=["127.0.0.1"], mcp_timeout=2.0),
    )
    try:
        server.stop()
        _, result, outcome = await call(toolbox, "mcp__calc__echo", {"text": "hi"})
        assert outcome.is_error and result["is_error"] is True
        assert "calc" in result["content"][0]["text"]
    finally:
        await toolbox.aclose()


async def test_allow_list_and_enabled_flag(http_server: McpHttpServer) -> None:
    toolbox = await prepared(
        [
            {
                "type": "url",
                "url": http_server.url,
                "name": "calc",
                "tool_configuration": {"enabled": True, "allowed_tools": ["echo"]},
            },
            {
                "type": "url",
                "url": http_server.url,
                "name": "off",
                "tool_configuration": {"enabled": False},
            },
        ]
    )
    try:
        assert toolbox.names() == {"mcp__calc__echo"}
    finally:
        await toolbox.aclose()


async def test_authorization_token_is_sent_and_kept_secret(
    http_server: McpHttpServer,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    servers = [
        {"type": "url", "url": http_server.url, "name": "calc", "authorization_token": TOKEN}
    ]
    caplog.set_level(logging.DEBUG)
    toolbox = await prepared(servers)
    try:
        _, result, _ = await call(toolbox, "mcp__calc__whoami", {})
        assert result["content"][0]["text"] == authorization_digest(f"Bearer {TOKEN}")
        tool = toolbox.tools[0]
        assert TOKEN not in repr(tool) and TOKEN not in repr(tool.connection.spec)
    finally:
        await toolbox.aclose()
    # A failing connection's error text does not carry it either.
    with pytest.raises(AnthropicError) as failed:
        await prepared(
            [
                {
                    "type": "url",
                    "url": "http://127.0.0.1:9/mcp",
                    "name": "down",
                    "authorization_token": TOKEN,
                }
            ]
        )
    assert TOKEN not in failed.value.message
    out = capsys.readouterr()
    assert TOKEN not in caplog.text + out.out + out.err
    # The payload store's redaction covers the request parameter.
    assert TOKEN not in str(redact({"mcp_servers": servers}))


async def test_unreachable_or_private_servers_are_the_clients_400() -> None:
    with pytest.raises(AnthropicError) as down:
        await prepared([{"type": "url", "url": "http://127.0.0.1:9/mcp", "name": "down"}])
    assert down.value.status == 400 and "down" in down.value.message
    # Without an allow list, loopback (like any private address) is refused.
    with pytest.raises(AnthropicError) as private:
        await prepared(
            [{"type": "url", "url": "http://127.0.0.1:9/mcp", "name": "local"}],
            Settings(mcp_timeout=5.0),
        )
    assert private.value.status == 400 and "not a public address" in private.value.message


@pytest.mark.parametrize(
    ("servers", "message"),
    [
        ("nope", "expected a list"),
        ([{"type": "url", "url": "http://x.example/mcp"}], "name: required"),
        ([{"type": "url", "name": "a"}], "http(s) URL"),
        ([{"type": "stdio", "name": "a", "url": "http://x.example"}], "only 'url'"),
        (
            [
                {"type": "url", "name": "a", "url": "http://x.example"},
                {"type": "url", "name": "a", "url": "http://y.example"},
            ],
            "used twice",
        ),
        (
            [
                {
                    "type": "url",
                    "name": "a",
                    "url": "http://x.example",
                    "tool_configuration": {"allowed_tools": "echo"},
                }
            ],
            "allowed_tools",
        ),
    ],
)
def test_malformed_mcp_servers_are_400s(servers: Any, message: str) -> None:
    with pytest.raises(AnthropicError) as error:
        build_toolbox(request_with(servers), SETTINGS)
    assert error.value.status == 400 and message in error.value.message


def test_function_names_are_valid_and_distinct() -> None:
    import re

    names = {
        function_name("calc", "add"),
        function_name("my.server", "a.b"),
        function_name("my_server", "a_b"),
        function_name("s" * 40, "t" * 40),
        function_name("s" * 40, "t" * 41),
    }
    assert len(names) == 5
    assert function_name("calc", "add") == "mcp__calc__add"
    for name in names:
        assert re.fullmatch(r"[A-Za-z0-9_-]{1,64}", name) and len(name) <= MAX_FUNCTION_NAME


def test_requests_without_mcp_servers_get_no_mcp_tools() -> None:
    request = MessagesRequest.model_validate(
        {"model": "x", "max_tokens": 1, "messages": [{"role": "user", "content": "hi"}]}
    )
    assert not [t for t in build_toolbox(request, SETTINGS).tools if isinstance(t, McpServerTool)]
