"""The MCP connector: a request's `mcp_servers`, and the tool kind every MCP server uses.

A request may name MCP servers (`{"type": "url", "url", "name", "authorization_token"?,
"tool_configuration": {"enabled", "allowed_tools"}}`). Before the first upstream call
`oas` connects to each (`mcp-connect` task), lists its tools, and offers the allowed
ones to the model as `mcp__<server>__<tool>` functions. Each call the model makes is an
`mcp-call` task; the client sees `mcp_tool_use` / `mcp_tool_result` blocks, as from
Anthropic's API. A failing call is an `is_error` result, never a failed request; a server
that cannot be reached at all is the client's 400 (the request named it), as Anthropic
answers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import structlog

from src.core.errors import AnthropicError
from src.core.settings import Settings
from src.schemas.anthropic import MessagesRequest
from src.services.mcp_client import (
    McpConnection,
    McpUnavailable,
    ServerSpec,
    function_for,
    function_name,
    result_content,
    url_transport,
)
from src.services.netguard import AddressPolicy, BlockedAddress
from src.tasks.server_tools.base import ServerTool, ToolCall, ToolOutcome, note_use
from src.tasks.server_tools.registry import register
from src.tracking import step

log = structlog.get_logger("oas.mcp")


@step("mcp-connect")
async def mcp_connect(connection: McpConnection) -> list[Any]:
    """Task: connect to one MCP server and list its tools."""
    await connection.open()
    tools = await connection.list_tools()
    note_use("mcp", f"{connection.spec.name}: connected, {len(tools)} tools")
    return tools


@step("mcp-call")
async def mcp_call(connection: McpConnection, tool: str, arguments: dict[str, Any]) -> Any:
    """Task: one call of one MCP tool (the server and tool name show in the run summary)."""
    note_use("mcp", f"{connection.spec.name}.{tool}")
    return await connection.call_tool(tool, arguments)


@dataclass
class McpServerTool(ServerTool):
    """One MCP server's tools, as offered to one request.

    `owned` connections (a request's own `mcp_servers`) are opened in `prepare` and closed
    in `aclose`; managed servers lend their long-lived connection and their tool list.
    """

    server_name: str
    connection: McpConnection
    allowed_tools: frozenset[str] | None = None
    owned: bool = True
    tools: list[Any] = field(default_factory=list)
    _functions: list[dict[str, Any]] = field(default_factory=list)
    _by_function: dict[str, str] = field(default_factory=dict)

    use_id_prefix = "mcptoolu_"

    async def prepare(self) -> None:
        if self.owned:
            try:
                self.tools = await mcp_connect(self.connection)
            except (McpUnavailable, BlockedAddress) as exc:
                raise AnthropicError(
                    "invalid_request_error",
                    f"MCP server '{self.server_name}' could not be used: {exc}",
                ) from None
        self.offer(self.tools)

    def offer(self, tools: list[Any]) -> None:
        """Offer `tools` (minus those the allow list leaves out) as functions."""
        self.tools = tools
        self._functions, self._by_function = [], {}
        for tool in tools:
            if self.allowed_tools is not None and tool.name not in self.allowed_tools:
                continue
            function = function_for(self.server_name, tool)
            self._functions.append(function)
            self._by_function[function["function"]["name"]] = tool.name

    def functions(self) -> list[dict[str, Any]]:
        return self._functions

    def handles(self, function_name: str) -> bool:
        return function_name in self._by_function

    def tool_name(self, function: str) -> str:
        return self._by_function.get(function, function)

    def use_block(self, call: ToolCall) -> dict[str, Any]:
        return {
            "type": "mcp_tool_use",
            "id": call.id,
            "name": self.tool_name(call.name),
            "server_name": self.server_name,
            "input": call.input,
        }

    async def run(self, call: ToolCall) -> ToolOutcome:
        tool = self.tool_name(call.name)
        arguments = call.input if isinstance(call.input, dict) else {}
        try:
            result = await mcp_call(self.connection, tool, arguments)
        except Exception as exc:
            text = f"MCP tool {self.server_name}.{tool} failed: {_reason(exc)}"
            log.info("MCP call failed", server=self.server_name, tool=tool, error=_reason(exc))
            return self._outcome(call, [{"type": "text", "text": text}], text, True)
        blocks, text = result_content(result)
        return self._outcome(call, blocks, text or "(no output)", bool(result.isError))

    @staticmethod
    def _outcome(
        call: ToolCall, blocks: list[dict[str, Any]], text: str, is_error: bool
    ) -> ToolOutcome:
        block = {
            "type": "mcp_tool_result",
            "tool_use_id": call.id,
            "is_error": is_error,
            "content": blocks,
        }
        return ToolOutcome([block], f"Error: {text}" if is_error else text, is_error)

    async def aclose(self) -> None:
        if self.owned:
            await self.connection.aclose()


def _reason(exc: BaseException) -> str:
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    text = getattr(getattr(exc, "error", None), "message", None) or str(exc)
    return f"{type(exc).__name__}: {text}"[:500] if text else type(exc).__name__


def _invalid(message: str) -> AnthropicError:
    return AnthropicError("invalid_request_error", message)


def parse_mcp_servers(value: Any, settings: Settings) -> list[McpServerTool]:
    """The request's `mcp_servers`, checked, as tools not yet connected (raises a 400)."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise _invalid("mcp_servers: expected a list of servers")
    tools: list[McpServerTool] = []
    names: set[str] = set()
    policy = AddressPolicy.from_entries(settings.mcp_allow_hosts)
    for position, server in enumerate(value):
        where = f"mcp_servers.{position}"
        if not isinstance(server, dict):
            raise _invalid(f"{where}: expected an object")
        if server.get("type", "url") != "url":
            raise _invalid(f"{where}.type: only 'url' servers are supported")
        name, url = server.get("name"), server.get("url")
        if not isinstance(name, str) or not name.strip():
            raise _invalid(f"{where}.name: required")
        if name in names:
            raise _invalid(f"{where}.name: '{name}' is used twice")
        names.add(name)
        if not isinstance(url, str):
            raise _invalid(f"{where}.url: an http(s) URL is required")
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise _invalid(f"{where}.url: an http(s) URL is required")
        config = server.get("tool_configuration") or {}
        if not isinstance(config, dict):
            raise _invalid(f"{where}.tool_configuration: expected an object")
        if config.get("enabled") is False:
            continue
        allowed = config.get("allowed_tools")
        if allowed is not None and not (
            isinstance(allowed, list) and all(isinstance(t, str) for t in allowed)
        ):
            raise _invalid(f"{where}.tool_configuration.allowed_tools: expected a list of names")
        token = server.get("authorization_token")
        headers = {"Authorization": f"Bearer {token}"} if isinstance(token, str) and token else {}
        spec = ServerSpec(
            name=name,
            transport=url_transport(url),
            url=url,
            headers=headers,
            timeout=settings.mcp_timeout,
        )
        tools.append(
            McpServerTool(
                server_name=name,
                connection=McpConnection(spec, policy),
                allowed_tools=frozenset(allowed) if allowed is not None else None,
            )
        )
    return tools


@register()
def request_mcp_servers(request: MessagesRequest, settings: Settings) -> list[ServerTool]:
    """Request-level kind: the servers in the request's `mcp_servers` parameter."""
    return list(parse_mcp_servers((request.model_extra or {}).get("mcp_servers"), settings))


__all__ = ["McpServerTool", "function_name", "parse_mcp_servers", "request_mcp_servers"]
