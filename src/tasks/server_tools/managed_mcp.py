"""Managed MCP servers for one request: the running ones it opted into, as tools.

Requests opt in with the header `x-oas-mcp: name,...` (or `*`), which the coordinator
copies into the body's `oas_mcp` list so a replay gets the same tools; a server declared
`offer: always` is offered to every request. They come through the same `McpServerTool`
kind as a request's own `mcp_servers`. The servers themselves are supervised by
`src/services/managed_mcp.py`.
"""

from __future__ import annotations

from typing import Any

from src.core.settings import Settings
from src.schemas.anthropic import MessagesRequest
from src.services.managed_mcp import current
from src.tasks.server_tools.base import ServerTool
from src.tasks.server_tools.mcp_connector import McpServerTool
from src.tasks.server_tools.registry import register

OPT_IN_HEADER = "x-oas-mcp"
OPT_IN_FIELD = "oas_mcp"


def requested_names(request: MessagesRequest) -> set[str]:
    """The managed servers a request asked for, from its `oas_mcp` field (a list, or a
    comma-separated string as the `x-oas-mcp` header carries it)."""
    value = (request.model_extra or {}).get(OPT_IN_FIELD)
    if isinstance(value, str):
        value = value.split(",")
    if not isinstance(value, list):
        return set()
    return {str(v).strip() for v in value if str(v).strip()}


def opt_in_from_header(body: Any, header: str | None) -> None:
    """Coordinator helper: copy the `x-oas-mcp` header into the body's `oas_mcp` field
    (kept with the stored request, so a replay gets the same tools)."""
    if header and isinstance(body, dict) and OPT_IN_FIELD not in body:
        body[OPT_IN_FIELD] = [n.strip() for n in header.split(",") if n.strip()]


@register()
def managed_mcp_tools(request: MessagesRequest, settings: Settings) -> list[ServerTool]:
    """Request-level kind: the managed servers this request gets."""
    servers = current()
    if not servers:
        return []
    own = (request.model_extra or {}).get("mcp_servers")
    taken = (
        {s["name"] for s in own if isinstance(s, dict) and isinstance(s.get("name"), str)}
        if isinstance(own, list)
        else set()
    )
    tools: list[ServerTool] = []
    for server in servers.available(requested_names(request), taken):
        if server.connection is None:
            continue
        allowed = server.config.allowed_tools
        tool = McpServerTool(
            server_name=server.config.name,
            connection=server.connection,
            allowed_tools=frozenset(allowed) if allowed is not None else None,
            owned=False,
            tools=list(server.tools),
        )
        tool.offer(tool.tools)
        tools.append(tool)
    return tools
