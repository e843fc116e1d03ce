"""convert-response: an OpenAI chat completion as an Anthropic message.

The completion's message is fed to the stream converter as a single chunk (reasoning,
then text, then tool calls), so a non-stream answer has exactly the blocks, tool inputs,
stop reason and usage a stream of the same answer would have.
"""

from __future__ import annotations

from typing import Any

from src.core.errors import AnthropicError
from src.services.upstream.errors import upstream_stream_error
from src.tasks.conversion.stream import StreamConverter
from src.tracking import step


def _text(content: Any) -> str | None:
    """Message content as text: a string, or the text of a list of parts."""
    if isinstance(content, str) or content is None:
        return content
    if isinstance(content, list):
        return "".join(
            p.get("text") or ""
            for p in content
            if isinstance(p, dict) and p.get("type") in ("text", "output_text")
        )
    return None


def as_chunk(completion: dict[str, Any]) -> dict[str, Any]:
    """A whole completion in the shape of one stream chunk."""
    choices = completion.get("choices") or []
    if not choices:
        if completion.get("error"):
            raise upstream_stream_error(completion["error"])
        raise AnthropicError("api_error", "The upstream answer had no choices.")
    choice = choices[0]
    message = choice.get("message") or {}
    delta = {
        "reasoning": message.get("reasoning") or message.get("reasoning_content"),
        "reasoning_details": message.get("reasoning_details"),
        "content": _text(message.get("content")),
        "refusal": message.get("refusal"),
        "tool_calls": [
            {**call, "index": i} for i, call in enumerate(message.get("tool_calls") or ())
        ],
    }
    return {
        "choices": [{**{k: v for k, v in choice.items() if k != "message"}, "delta": delta}],
        "usage": completion.get("usage"),
        "provider": completion.get("provider"),
    }


@step("convert-response")
def convert_response(completion: dict[str, Any], converter: StreamConverter) -> None:
    """Task: one whole upstream answer, converted into the message being assembled."""
    converter.feed(as_chunk(completion))
