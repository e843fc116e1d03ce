"""convert-request: an Anthropic Messages request as an OpenRouter chat completion request."""

from __future__ import annotations

from typing import Any

import orjson
import structlog

from src.schemas.anthropic import (
    ImageBlock,
    Message,
    MessagesRequest,
    TextBlock,
    ToolResultBlock,
    ToolUseBlock,
)
from src.tasks.routing import Route
from src.tracking import step

log = structlog.get_logger("oas.conversion")

_dropped_once: set[str] = set()


def note_dropped(what: str, reason: str) -> None:
    """Log, once per process, a part of the request that has no upstream equivalent."""
    if what not in _dropped_once:
        _dropped_once.add(what)
        log.info("request part not sent upstream", part=what, reason=reason)


def _image_part(block: ImageBlock) -> dict[str, Any] | None:
    source = block.source
    if source.type == "base64" and source.data:
        url = f"data:{source.media_type or 'image/png'};base64,{source.data}"
    elif source.type == "url" and source.url:
        url = source.url
    else:
        note_dropped(f"image source {source.type}", "no upstream equivalent")
        return None
    return {"type": "image_url", "image_url": {"url": url}}


def _text_of(content: str | list[dict[str, Any]] | None) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return "\n".join(
        _part_text(part) for part in content
        if isinstance(part, dict) and part.get("type") in ("text", "tool_reference")
    )


def _part_text(part: dict[str, Any]) -> str:
    if part.get("type") == "tool_reference":
        # Claude Code's ToolSearch answers with references to the tools it just loaded;
        # without this line the model would see an empty result.
        return f"Tool loaded: {part.get('tool_name', '')}"
    return part.get("text", "")


def _system_messages(system: str | list[TextBlock] | None) -> list[dict[str, Any]]:
    if not system:
        return []
    if isinstance(system, str):
        return [{"role": "system", "content": system}]
    text = "\n\n".join(block.text for block in system if block.text)
    return [{"role": "system", "content": text}] if text else []


def _user_messages(message: Message) -> list[dict[str, Any]]:
    """A user turn: tool results first (as `tool` messages), then the rest as one user message."""
    if isinstance(message.content, str):
        return [{"role": "user", "content": message.content}]
    out: list[dict[str, Any]] = []
    parts: list[dict[str, Any]] = []
    for block in message.content:
        if isinstance(block, ToolResultBlock):
            text = _text_of(block.content)
            if block.is_error:
                text = f"Error: {text}" if text else "Error"
            out.append({"role": "tool", "tool_call_id": block.tool_use_id, "content": text})
        elif isinstance(block, TextBlock):
            parts.append({"type": "text", "text": block.text})
        elif isinstance(block, ImageBlock):
            if (part := _image_part(block)) is not None:
                parts.append(part)
        else:
            note_dropped(f"user block {block.type}", "not converted yet")
    if parts:
        if all(p["type"] == "text" for p in parts):
            out.append({"role": "user", "content": "\n".join(p["text"] for p in parts)})
        else:
            out.append({"role": "user", "content": parts})
    return out


def _assistant_message(message: Message) -> dict[str, Any]:
    if isinstance(message.content, str):
        return {"role": "assistant", "content": message.content}
    texts: list[str] = []
    tool_calls: list[dict[str, Any]] = []
    for block in message.content:
        if isinstance(block, TextBlock):
            texts.append(block.text)
        elif isinstance(block, ToolUseBlock):
            tool_calls.append({
                "id": block.id,
                "type": "function",
                "function": {
                    "name": block.name,
                    "arguments": orjson.dumps(block.input if block.input is not None else {}).decode(),
                },
            })
        else:
            note_dropped(f"assistant block {block.type}", "not converted yet")
    out: dict[str, Any] = {"role": "assistant", "content": "".join(texts) or None}
    if tool_calls:
        out["tool_calls"] = tool_calls
    return out


def convert_messages(request: MessagesRequest) -> list[dict[str, Any]]:
    """The system prompt and every turn, in OpenAI chat order."""
    out = _system_messages(request.system)
    for message in request.messages:
        if message.role == "assistant":
            out.append(_assistant_message(message))
        elif message.role == "system":
            out.extend(_system_messages(
                message.content if isinstance(message.content, str)
                else [b for b in message.content if isinstance(b, TextBlock)]
            ))
        else:
            out.extend(_user_messages(message))
    return out


def convert_tools(request: MessagesRequest) -> list[dict[str, Any]]:
    """Client tools as OpenAI functions; Anthropic's server tools are never sent as functions."""
    tools = []
    for tool in request.tools or []:
        if tool.is_server_tool:
            note_dropped(f"server tool {tool.type}", "server tools are not offered upstream")
            continue
        tools.append({
            "type": "function",
            "function": {
                "name": tool.name,
                "description": tool.description or "",
                "parameters": tool.input_schema or {"type": "object", "properties": {}},
            },
        })
    return tools


def convert_tool_choice(request: MessagesRequest) -> dict[str, Any]:
    """`tool_choice` and `parallel_tool_calls` fields for the upstream body."""
    choice = request.tool_choice
    if choice is None:
        return {}
    out: dict[str, Any] = {}
    if choice.type == "auto":
        out["tool_choice"] = "auto"
    elif choice.type == "any":
        out["tool_choice"] = "required"
    elif choice.type == "none":
        out["tool_choice"] = "none"
    elif choice.type == "tool" and choice.name:
        out["tool_choice"] = {"type": "function", "function": {"name": choice.name}}
    if choice.disable_parallel_tool_use:
        out["parallel_tool_calls"] = False
    return out


def to_openai(request: MessagesRequest, route: Route) -> dict[str, Any]:
    """The whole upstream request body."""
    body: dict[str, Any] = {
        "model": route.upstream_model,
        "messages": convert_messages(request),
        "max_tokens": request.max_tokens,
        "stream": request.stream,
        "usage": {"include": True},
    }
    if request.stream:
        body["stream_options"] = {"include_usage": True}
    for name in ("temperature", "top_p", "top_k"):
        value = getattr(request, name)
        if value is not None:
            body[name] = value
    if request.stop_sequences:
        body["stop"] = request.stop_sequences
    if tools := convert_tools(request):
        body["tools"] = tools
        body.update(convert_tool_choice(request))
    if request.metadata and request.metadata.user_id:
        body["user"] = request.metadata.user_id
    return body


@step("convert-request")
def convert_request(request: MessagesRequest, route: Route) -> dict[str, Any]:
    """Task: the upstream body for this request."""
    return to_openai(request, route)
