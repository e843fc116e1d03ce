"""The contract every server tool kind fulfils, and the per-request `Toolbox`."""

from __future__ import annotations

import asyncio
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Protocol

import structlog

from src.tracking.run import current_run

log = structlog.get_logger("oas.server_tools")


def note_use(kind: str, detail: str) -> None:
    """Tell the dashboard what a server tool did (`web_fetch: https://...`), in the run's
    summary list `server_tools` and a `server-tool:<kind>` tag; no-op outside a run."""
    run = current_run.get()
    if run is None:
        return
    run.add_tags(f"server-tool:{kind}")
    run.summary.setdefault("server_tools", []).append(f"{kind}: {detail}"[:300])


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A call the model made to a server tool's function."""

    id: str  # the `srvtoolu_...` id the client sees
    name: str  # the function name offered upstream
    input: dict[str, Any]


@dataclass(slots=True)
class ToolOutcome:
    """What running one call produced.

    `blocks` go to the client right after the call's use block (e.g. a
    `web_fetch_tool_result`); `for_model` is the `tool` message content sent back upstream.
    """

    blocks: list[dict[str, Any]]
    for_model: str | list[dict[str, Any]]
    is_error: bool = False


class ServerToolLookup(Protocol):
    """What the stream converter needs of a toolbox: which tool owns a function name."""

    def find(self, function_name: str) -> ServerTool | None: ...

    def functions(self) -> list[dict[str, Any]]: ...


class ServerTool(ABC):
    """One kind of server tool, as configured by one request.

    Subclasses say which functions they offer the model, build the block the client sees
    for a call (Anthropic's `server_tool_use`, or `mcp_tool_use`), and run calls. `run`
    must not raise for tool-level failures: those become the result block's error form.
    """

    #: counted in `usage.server_tool_use.<usage_key>` when set (e.g. "web_fetch_requests")
    usage_key: str | None = None
    #: how the ids of this kind's use blocks start (`srvtoolu_` for Anthropic's server
    #: tools, `mcptoolu_` for MCP); the loop makes `ToolCall.id` with it
    use_id_prefix: str = "srvtoolu_"

    async def prepare(self) -> None:
        """Open what the tool needs before its functions can be offered (an MCP server's
        tool list, say). Raise `AnthropicError` when the request cannot go on without it."""

    @abstractmethod
    def functions(self) -> list[dict[str, Any]]:
        """OpenAI function tools to offer upstream."""

    def handles(self, function_name: str) -> bool:
        return any(f["function"]["name"] == function_name for f in self.functions())

    def use_block(self, call: ToolCall) -> dict[str, Any]:
        """The block that shows the client what was called."""
        return {"type": "server_tool_use", "id": call.id, "name": call.name, "input": call.input}

    @abstractmethod
    async def run(self, call: ToolCall) -> ToolOutcome:
        """Run one call (through its own Prefect task) and describe the outcome."""

    def response_fields(self) -> dict[str, Any]:
        """Top-level fields this tool adds to the response message, once the loop is done.

        Code execution's `container: {id, expires_at}`: in a non-stream response a key of
        the message, in a stream a key of the final `message_delta` event's `delta`.
        """
        return {}

    async def aclose(self) -> None:
        """Release what the tool opened for this request (connections, workspaces)."""


@dataclass
class Toolbox:
    """The server tools in play for one request, with the loop's bounds."""

    tools: list[ServerTool] = field(default_factory=list)
    max_iterations: int = 10
    max_seconds: float = 300.0
    started: float = field(default_factory=time.monotonic)
    usage: dict[str, int] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.tools)

    async def prepare(self) -> None:
        """Prepare every tool at once (before the first upstream call); on failure close
        them all and re-raise, so no connection outlives a failed request."""
        if not self.tools:
            return
        results = await asyncio.gather(*(t.prepare() for t in self.tools), return_exceptions=True)
        failure = next((r for r in results if isinstance(r, BaseException)), None)
        if failure is not None:
            await self.aclose()
            raise failure

    def functions(self) -> list[dict[str, Any]]:
        return [f for tool in self.tools for f in tool.functions()]

    def find(self, function_name: str) -> ServerTool | None:
        for tool in self.tools:
            if tool.handles(function_name):
                return tool
        return None

    def names(self) -> set[str]:
        return {f["function"]["name"] for f in self.functions()}

    def out_of_budget(self, iteration: int) -> bool:
        return (
            iteration >= self.max_iterations or time.monotonic() - self.started > self.max_seconds
        )

    def count(self, tool: ServerTool) -> None:
        if tool.usage_key:
            self.usage[tool.usage_key] = self.usage.get(tool.usage_key, 0) + 1

    def response_fields(self) -> dict[str, Any]:
        """What every tool adds at the top level of the response (see `ServerTool`)."""
        fields: dict[str, Any] = {}
        for tool in self.tools:
            fields.update(tool.response_fields())
        return fields

    async def aclose(self) -> None:
        for tool in self.tools:
            try:
                await tool.aclose()
            except Exception as exc:
                log.warning(
                    "closing a server tool failed",
                    tool=type(tool).__name__,
                    error=f"{type(exc).__name__}: {exc}",
                )
