"""Server-tool blocks a client sends back in later turns, as text the model can read.

Anthropic's clients return the whole conversation each turn, so an assistant message may
hold `server_tool_use`, `web_search_tool_result`, `web_fetch_tool_result`, `mcp_tool_use`
and `mcp_tool_result` blocks from earlier turns. Upstream has no such blocks; dropping
them would make the model forget what it searched, read or called. `prior_block_text`
renders one of them as assistant text (the function it called may not be offered any
more, so they are not replayed as tool calls).
"""

from __future__ import annotations

from typing import Any

import orjson

from src.tasks.server_tools.code_execution.blocks import describe_result
from src.tasks.server_tools.search_blocks import decode_opaque

CODE_EXECUTION_RESULTS = frozenset(
    {
        "bash_code_execution_tool_result",
        "text_editor_code_execution_tool_result",
        "code_execution_tool_result",
    }
)
SERVER_BLOCK_TYPES = frozenset(
    {
        "server_tool_use",
        "web_search_tool_result",
        "web_fetch_tool_result",
        "mcp_tool_use",
        "mcp_tool_result",
        *CODE_EXECUTION_RESULTS,
    }
)
MAX_PRIOR_CHARS = 20_000  # a fetched page seen in an earlier turn, as much as is kept


def _json(value: Any) -> str:
    return orjson.dumps(value).decode() if value is not None else "{}"


def prior_block_text(block: dict[str, Any]) -> str | None:
    """The text for one earlier server-tool block, or None if it is not one."""
    kind = block.get("type")
    if kind == "server_tool_use":
        return f"[{block.get('name', 'server tool')} call: {_json(block.get('input'))}]"
    if kind == "mcp_tool_use":
        return (
            f"[MCP call {block.get('server_name', '?')}.{block.get('name', '?')}: "
            f"{_json(block.get('input'))}]"
        )
    if kind == "web_search_tool_result":
        return _search_text(block.get("content"))
    if kind == "web_fetch_tool_result":
        return _fetch_text(block.get("content"))
    if kind in CODE_EXECUTION_RESULTS:
        content = block.get("content")
        text = describe_result(content) if isinstance(content, dict) else ""
        return f"[{kind.removesuffix('_tool_result')} result]\n{text[:MAX_PRIOR_CHARS]}"
    if kind == "mcp_tool_result":
        content = block.get("content")
        if isinstance(content, list):
            content = "\n".join(p.get("text", "") for p in content if isinstance(p, dict))
        label = "MCP error" if block.get("is_error") else "MCP result"
        return f"[{label}]\n{str(content or '')[:MAX_PRIOR_CHARS]}"
    return None


def _search_text(content: Any) -> str:
    if isinstance(content, dict):
        return f"[web search failed: {content.get('error_code', 'unavailable')}]"
    lines = ["[web search results]"]
    for item in content or ():
        if not isinstance(item, dict):
            continue
        line = f"- {item.get('title', '')} ({item.get('url', '')})"
        inner = decode_opaque(str(item.get("encrypted_content", "")))
        if inner and inner.get("snippet"):
            line += f": {inner['snippet']}"
        lines.append(line)
    return "\n".join(lines)


def _fetch_text(content: Any) -> str:
    if not isinstance(content, dict):
        return "[web fetch result]"
    if content.get("type") == "web_fetch_tool_result_error":
        return f"[web fetch failed: {content.get('error_code', 'unavailable')}]"
    document = content.get("content") or {}
    source = document.get("source") or {}
    data = source.get("data") if source.get("type") == "text" else "(binary document)"
    title = f" ({document['title']})" if document.get("title") else ""
    return f"[fetched {content.get('url', '')}{title}]\n{str(data or '')[:MAX_PRIOR_CHARS]}"
