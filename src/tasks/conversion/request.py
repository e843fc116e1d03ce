"""convert-request: an Anthropic Messages request as an OpenRouter chat completion request.

The order of the conversation is kept exactly: system prompt (string, blocks, or
`role: "system"` turns where they stand), then each turn. A user turn's tool results
become `tool` messages first (OpenAI wants them right after the assistant's calls), then
one user message with the turn's text, images and documents. An assistant turn becomes
one message with its text, `tool_calls` and `reasoning_details`.
"""

from __future__ import annotations

from typing import Any

import orjson

from src.core.settings import Settings
from src.schemas.anthropic import (
    Message,
    MessagesRequest,
    RedactedThinkingBlock,
    TextBlock,
    ThinkingBlock,
    ToolResultBlock,
    ToolUseBlock,
)
from src.tasks.conversion.content import (
    block_parts,
    cache_marked,
    collapse,
    text_part,
    tool_result_parts,
)
from src.tasks.conversion.dropped import note_dropped, note_unknown_fields
from src.tasks.conversion.thinking import reasoning_details, reasoning_param
from src.tasks.conversion.tool_ids import ToolIdMap
from src.tasks.conversion.tools import client_tools, convert_tool_choice, convert_tools
from src.tasks.routing import Route
from src.tasks.server_tools.history import prior_block_text
from src.tasks.server_tools.web_search import apply_web_search
from src.tracking import step

# Fields this module converts; anything else at the top level is tolerated and logged once.
_CONVERTED = frozenset(
    {
        "model",
        "messages",
        "max_tokens",
        "system",
        "stream",
        "temperature",
        "top_p",
        "top_k",
        "stop_sequences",
        "tools",
        "tool_choice",
        "thinking",
        "metadata",
        "output_config",
        "output_format",
        "cache_control",
    }
)

# Model families on OpenRouter that honour explicit `cache_control` breakpoints.
_CACHE_CONTROL_MODELS = ("anthropic/", "google/gemini", "qwen/", "claude", "gemini")


def honours_cache_control(upstream_model: str, mode: str = "auto") -> bool:
    """Whether `cache_control` breakpoints are worth sending to this model.

    Anthropic and Gemini models (and Qwen on Alibaba) cache only where they are told;
    OpenAI, DeepSeek, Grok and others cache by themselves and some providers refuse
    unknown fields, so for them the breakpoints are dropped.
    """
    if mode in ("always", "never"):
        return mode == "always"
    model = upstream_model.lower().lstrip("~")
    return any(model.startswith(f) or (f.isalpha() and f in model) for f in _CACHE_CONTROL_MODELS)


# -- turns -------------------------------------------------------------------------------


def _system_messages(system: str | list[Any] | None, keep_cache: bool) -> list[dict[str, Any]]:
    if not system:
        return []
    if isinstance(system, str):
        return [{"role": "system", "content": system}]
    parts = [
        cache_marked(text_part(b.text), b, keep_cache)
        for b in system
        if isinstance(b, TextBlock) and b.text
    ]
    return [{"role": "system", "content": collapse(parts, "\n\n")}] if parts else []


class _Conversation:
    """State shared by the turns of one request: tool ids and the names they belong to."""

    def __init__(self, request: MessagesRequest, keep_cache: bool) -> None:
        self.keep_cache = keep_cache
        uses = [
            b
            for m in request.messages
            if m.role == "assistant" and isinstance(m.content, list)
            for b in m.content
            if isinstance(b, ToolUseBlock)
        ]
        self.ids = ToolIdMap(b.id for b in uses)
        self.names = {b.id: b.name for b in uses}

    def user(self, message: Message) -> list[dict[str, Any]]:
        if isinstance(message.content, str):
            return [{"role": "user", "content": message.content}]
        tool_messages: list[dict[str, Any]] = []
        parts: list[dict[str, Any]] = []
        for block in message.content:
            if isinstance(block, ToolResultBlock):
                texts, media = tool_result_parts(block, self.keep_cache)
                tool_messages.append(
                    {
                        "role": "tool",
                        "tool_call_id": self.ids.upstream(block.tool_use_id),
                        "content": collapse(texts),
                    }
                )
                if media:
                    name = self.names.get(block.tool_use_id)
                    which = f"the {name} tool call" if name else "a tool call"
                    parts.append(text_part(f"Content returned by {which}:"))
                    parts.extend(media)
            else:
                parts.extend(block_parts(block, self.keep_cache, "user"))
        if parts:
            tool_messages.append({"role": "user", "content": collapse(parts)})
        return tool_messages

    def assistant(self, message: Message) -> dict[str, Any] | None:
        if isinstance(message.content, str):
            return {"role": "assistant", "content": message.content} if message.content else None
        texts: list[dict[str, Any]] = []
        calls: list[dict[str, Any]] = []
        thinking: list[ThinkingBlock | RedactedThinkingBlock] = []
        for block in message.content:
            if isinstance(block, TextBlock):
                if block.text.strip():  # whitespace-only text is refused by several providers
                    texts.append(cache_marked(text_part(block.text), block, self.keep_cache))
            elif isinstance(block, ToolUseBlock):
                arguments = block.input if block.input is not None else {}
                calls.append(
                    {
                        "id": self.ids.upstream(block.id),
                        "type": "function",
                        "function": {
                            "name": block.name,
                            "arguments": orjson.dumps(arguments).decode(),
                        },
                    }
                )
            elif isinstance(block, (ThinkingBlock, RedactedThinkingBlock)):
                thinking.append(block)
            elif (prior := prior_block_text(block.model_dump())) is not None:
                # A server tool's call or result from an earlier turn: the model reads
                # what it searched, fetched or ran as text.
                texts.append(text_part(prior))
            else:
                note_dropped(f"assistant block {block.type}", "no upstream equivalent")
        if not (texts or calls or thinking):
            return None
        content = collapse(texts, "\n\n") if texts else None
        out: dict[str, Any] = {"role": "assistant", "content": content}
        if calls:
            out["tool_calls"] = calls
        if thinking:
            out["reasoning_details"] = reasoning_details(thinking)
        return out


def convert_messages(request: MessagesRequest, keep_cache: bool = False) -> list[dict[str, Any]]:
    """The system prompt and every turn, in OpenAI chat order."""
    conversation = _Conversation(request, keep_cache)
    out = _system_messages(request.system, keep_cache)
    for message in request.messages:
        if message.role == "assistant":
            if (converted := conversation.assistant(message)) is not None:
                out.append(converted)
        elif message.role == "system":
            out.extend(_system_messages(message.content, keep_cache))
        else:
            out.extend(conversation.user(message))
    return out


# -- the whole body ----------------------------------------------------------------------


def _response_format(request: MessagesRequest) -> dict[str, Any] | None:
    """`output_config.format` (or the beta `output_format`) as OpenAI's `response_format`."""
    fmt = request.output_config.format if request.output_config else None
    fmt = fmt or (request.model_extra or {}).get("output_format")
    if not isinstance(fmt, dict) or fmt.get("type") != "json_schema":
        return None
    if not isinstance(fmt.get("schema"), dict):
        return None
    return {
        "type": "json_schema",
        "json_schema": {"name": "response", "strict": True, "schema": fmt["schema"]},
    }


def to_openai(
    request: MessagesRequest,
    route: Route,
    settings: Settings | None = None,
    server_functions: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The whole upstream body; `server_functions` are the functions of the server tools
    `oas` runs itself (web fetch, MCP, code execution), offered beside the client's."""
    keep_cache = honours_cache_control(
        route.upstream_model, settings.cache_control if settings else "auto"
    )
    body: dict[str, Any] = {
        "model": route.upstream_model,
        "messages": convert_messages(request, keep_cache),
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
    offered = client_tools(request)
    if offered:
        body["tools"] = convert_tools(offered, keep_cache)
        body.update(convert_tool_choice(request, offered))
    if server_functions:
        body["tools"] = [*body.get("tools", []), *server_functions]
    if settings is not None:
        apply_web_search(body, request, settings)  # OpenRouter searches; see web_search.py
    if (reasoning := reasoning_param(request)) is not None:
        body["reasoning"] = reasoning
    if (response_format := _response_format(request)) is not None:
        body["response_format"] = response_format
    if request.metadata and request.metadata.user_id:
        body["user"] = request.metadata.user_id
    if request.cache_control is not None:
        if keep_cache:
            body["cache_control"] = request.cache_control.model_dump(exclude_none=True)
        else:
            note_dropped(f"cache_control for {route.upstream_model}", "this model caches by itself")
    provider = (
        route.provider_prefs
        if route.provider_prefs is not None
        else (settings.provider if settings is not None else None)
    )
    if provider:
        body["provider"] = provider
    note_unknown_fields(k for k in (request.model_extra or {}) if k not in _CONVERTED)
    return body


@step("convert-request")
def convert_request(
    request: MessagesRequest,
    route: Route,
    settings: Settings | None = None,
    server_functions: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Task: the upstream body for this request."""
    return to_openai(request, route, settings, server_functions)
