"""convert-response: an OpenAI chat completion as an Anthropic message."""

from __future__ import annotations

from typing import Any

import orjson
from json_repair import repair_json

from src.core.errors import AnthropicError
from src.core.ids import message_id, tool_use_id
from src.tasks.conversion.finish import anthropic_usage, stop_reason
from src.tracking import step


def parse_arguments(arguments: Any) -> tuple[dict[str, Any], bool]:
    """Tool-call arguments as an object, repairing broken JSON; (input, was_repaired)."""
    if isinstance(arguments, dict):
        return arguments, False
    if not arguments:
        return {}, False
    try:
        value = orjson.loads(arguments)
        repaired = False
    except orjson.JSONDecodeError:
        value = repair_json(arguments, return_objects=True)
        repaired = True
    if not isinstance(value, dict):
        return {}, True
    return value, repaired


def to_anthropic(completion: dict[str, Any], client_model: str) -> dict[str, Any]:
    """The Anthropic message for a non-stream completion."""
    if "error" in completion and not completion.get("choices"):
        error = completion["error"] or {}
        raise AnthropicError("api_error", str(error.get("message") or error))
    choices = completion.get("choices") or []
    if not choices:
        raise AnthropicError("api_error", "The upstream answer had no choices.")
    choice = choices[0]
    message = choice.get("message") or {}
    content: list[dict[str, Any]] = []
    text = message.get("content")
    if isinstance(text, str) and text:
        content.append({"type": "text", "text": text})
    tool_calls = message.get("tool_calls") or []
    for call in tool_calls:
        function = call.get("function") or {}
        arguments, _ = parse_arguments(function.get("arguments"))
        content.append({
            "type": "tool_use",
            "id": tool_use_id(),
            "name": function.get("name") or "",
            "input": arguments,
        })
    return {
        "id": message_id(),
        "type": "message",
        "role": "assistant",
        "model": client_model,
        "content": content,
        "stop_reason": stop_reason(choice.get("finish_reason"), bool(tool_calls)),
        "stop_sequence": None,
        "usage": anthropic_usage(completion.get("usage")),
    }


@step("convert-response")
def convert_response(completion: dict[str, Any], client_model: str) -> dict[str, Any]:
    """Task: the message the client receives."""
    return to_anthropic(completion, client_model)
