"""Client tools as OpenAI functions, and `tool_choice` in OpenAI's terms.

`input_schema` -> `parameters`; `input_examples` are kept in the description (the model
still sees them); `defer_loading`, `strict`, `eager_input_streaming` and other extras are
tolerated. Anthropic's server tools (`web_search_*`, `web_fetch_*`, `code_execution_*`,
`mcp_toolset`, ...) are never offered upstream as ordinary functions: the model would
call them and nobody would answer.
"""

from __future__ import annotations

from typing import Any

import orjson

from src.schemas.anthropic import MessagesRequest, Tool
from src.tasks.conversion.content import cache_marked
from src.tasks.conversion.dropped import note_dropped

_EMPTY_SCHEMA: dict[str, Any] = {"type": "object", "properties": {}}


def client_tools(request: MessagesRequest) -> list[Tool]:
    """The tools the client runs itself (server tools left out, with a log line)."""
    tools = []
    for tool in request.tools or ():
        if tool.is_server_tool:
            note_dropped(f"server tool {tool.type}", "server tools are not offered upstream")
        else:
            tools.append(tool)
    return tools


def _description(tool: Tool) -> str:
    description = tool.description or ""
    examples = (tool.model_extra or {}).get("input_examples")
    if isinstance(examples, list) and examples:
        shown = "\n".join(orjson.dumps(e).decode() for e in examples[:5])
        description = f"{description}\n\nExample inputs:\n{shown}".strip()
    return description


def _parameters(tool: Tool) -> dict[str, Any]:
    schema = tool.input_schema
    if not isinstance(schema, dict) or not schema:
        return dict(_EMPTY_SCHEMA)
    if "type" not in schema:
        return {"type": "object", **schema}
    return schema


def convert_tools(tools: list[Tool], keep_cache: bool) -> list[dict[str, Any]]:
    """OpenAI `tools` for the client tools."""
    out = []
    for tool in tools:
        converted: dict[str, Any] = {
            "type": "function",
            "function": {
                "name": tool.name,
                "description": _description(tool),
                "parameters": _parameters(tool),
            },
        }
        out.append(cache_marked(converted, tool, keep_cache))
    return out


def convert_tool_choice(request: MessagesRequest, offered: list[Tool]) -> dict[str, Any]:
    """`tool_choice` and `parallel_tool_calls` for the upstream body (empty: the default)."""
    choice = request.tool_choice
    if choice is None or not offered:
        return {}
    out: dict[str, Any] = {}
    if choice.type == "auto":
        out["tool_choice"] = "auto"
    elif choice.type == "any":
        out["tool_choice"] = "required"
    elif choice.type == "none":
        out["tool_choice"] = "none"
    elif choice.type == "tool":
        if any(t.name == choice.name for t in offered):
            out["tool_choice"] = {"type": "function", "function": {"name": choice.name}}
        else:
            note_dropped(f"tool_choice {choice.name}", "names a tool that is not offered upstream")
            out["tool_choice"] = "required"
    if choice.disable_parallel_tool_use:
        out["parallel_tool_calls"] = False
    return out


def tool_schemas(request: MessagesRequest | None) -> dict[str, dict[str, Any]]:
    """Each client tool's `input_schema` by name, to check the model's arguments against."""
    if request is None:
        return {}
    return {
        t.name: t.input_schema or {} for t in request.tools or () if not t.is_server_tool and t.name
    }
