"""stream-response: OpenAI chat completion chunks in, Anthropic SSE events out.

One converter per stream, fed chunk by chunk; it writes bytes ready for the socket so
the per-chunk path is a dict lookup, one `orjson.dumps` and a bytes join.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import orjson

from src.core.errors import AnthropicError, error_type_for_status
from src.core.ids import message_id, tool_use_id
from src.tasks.conversion.finish import anthropic_usage, stop_reason
from src.tasks.conversion.sse import sse, sse_error
from src.tracking import step

_PING = sse("ping", {"type": "ping"})


@dataclass
class StreamOutcome:
    """What a stream turned out to be, for usage records and the dashboard."""

    message_id: str = ""
    stop_reason: str | None = None
    usage: dict[str, Any] = field(default_factory=dict)
    raw_usage: dict[str, Any] | None = None
    first_token_at: float | None = None
    chunks: int = 0
    tool_calls: list[str] = field(default_factory=list)
    error: AnthropicError | None = None


class StreamConverter:
    """Turns one upstream stream into Anthropic events, block by block."""

    def __init__(self, client_model: str, outcome: StreamOutcome | None = None) -> None:
        self.model = client_model
        self.outcome = outcome or StreamOutcome()
        self.outcome.message_id = message_id()
        self.index = -1
        self.open_kind: str | None = None  # "text" | "thinking" | "tool_use"
        self.tool_blocks: dict[int, int] = {}  # upstream tool index -> our block index
        self.finish_reason: str | None = None
        self.signature: str | None = None
        self._delta_prefix = b""

    # -- events -------------------------------------------------------------------------

    def start(self) -> bytes:
        """`message_start` and a `ping`, sent as soon as the upstream accepted the request."""
        message = {
            "id": self.outcome.message_id,
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": 0, "output_tokens": 0,
                      "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0},
        }
        return sse("message_start", {"type": "message_start", "message": message}) + _PING

    def _open(self, kind: str, block: dict[str, Any]) -> bytes:
        out = self._close()
        self.index += 1
        self.open_kind = kind
        self._delta_prefix = (
            b'event: content_block_delta\ndata: {"type":"content_block_delta","index":'
            + str(self.index).encode()
            + b',"delta":'
        )
        return out + sse("content_block_start", {
            "type": "content_block_start", "index": self.index, "content_block": block,
        })

    def _delta(self, delta: dict[str, Any]) -> bytes:
        return self._delta_prefix + orjson.dumps(delta) + b"}\n\n"

    def _close(self) -> bytes:
        if self.open_kind is None:
            return b""
        out = b""
        if self.open_kind == "thinking":
            out += self._delta({"type": "signature_delta", "signature": self.signature or ""})
            self.signature = None
        self.open_kind = None
        return out + sse("content_block_stop", {"type": "content_block_stop", "index": self.index})

    # -- chunks -------------------------------------------------------------------------

    def feed(self, chunk: dict[str, Any]) -> bytes:
        """The events for one upstream chunk (often empty bytes)."""
        if (error := chunk.get("error")) is not None:
            raise upstream_stream_error(error)
        self.outcome.chunks += 1
        if (usage := chunk.get("usage")) is not None:
            self.outcome.raw_usage = usage
        choices = chunk.get("choices")
        if not choices:
            return b""
        choice = choices[0]
        out = b""
        delta = choice.get("delta") or {}
        reasoning = delta.get("reasoning")
        if reasoning:
            out += self._thinking(reasoning)
        for detail in delta.get("reasoning_details") or ():
            if detail.get("signature"):
                self.signature = detail["signature"]
        text = delta.get("content")
        if text:
            if self.open_kind != "text":
                out += self._open("text", {"type": "text", "text": ""})
            if self.outcome.first_token_at is None:
                self.outcome.first_token_at = time.time()
            out += self._delta_prefix + b'{"type":"text_delta","text":' + orjson.dumps(text) + b"}}\n\n"
        for call in delta.get("tool_calls") or ():
            out += self._tool_call(call)
        if choice.get("finish_reason"):
            self.finish_reason = choice["finish_reason"]
        return out

    def _thinking(self, text: str) -> bytes:
        out = b""
        if self.open_kind != "thinking":
            out += self._open("thinking", {"type": "thinking", "thinking": "", "signature": ""})
        if self.outcome.first_token_at is None:
            self.outcome.first_token_at = time.time()
        return out + self._delta({"type": "thinking_delta", "thinking": text})

    def _tool_call(self, call: dict[str, Any]) -> bytes:
        out = b""
        position = call.get("index", len(self.tool_blocks))
        function = call.get("function") or {}
        if position not in self.tool_blocks:
            name = function.get("name") or ""
            out += self._open("tool_use", {"type": "tool_use", "id": tool_use_id(), "name": name,
                                           "input": {}})
            self.tool_blocks[position] = self.index
            self.outcome.tool_calls.append(name)
            if self.outcome.first_token_at is None:
                self.outcome.first_token_at = time.time()
        elif self.tool_blocks[position] != self.index:
            # Arguments for a call whose block is already closed cannot be sent any more.
            return out
        arguments = function.get("arguments")
        if arguments:
            out += self._delta({"type": "input_json_delta", "partial_json": arguments})
        return out

    def finish(self) -> bytes:
        """Close the last block and end the message with its stop reason and usage."""
        out = self._close()
        reason = stop_reason(self.finish_reason, bool(self.tool_blocks))
        usage = anthropic_usage(self.outcome.raw_usage)
        self.outcome.stop_reason = reason
        self.outcome.usage = usage
        out += sse("message_delta", {
            "type": "message_delta",
            "delta": {"stop_reason": reason, "stop_sequence": None},
            "usage": usage,
        })
        return out + sse("message_stop", {"type": "message_stop"})


def upstream_stream_error(error: Any) -> AnthropicError:
    """An error the upstream sent inside its stream, as an Anthropic error."""
    if isinstance(error, dict):
        message = str(error.get("message") or error)
        code = error.get("code")
    else:
        message, code = str(error), None
    kind = error_type_for_status(code) if isinstance(code, int) else "api_error"
    return AnthropicError(kind, message)


async def convert_stream(
    chunks: AsyncIterator[dict[str, Any]], client_model: str, outcome: StreamOutcome
) -> AsyncIterator[bytes]:
    """Anthropic SSE bytes for an upstream chunk stream; errors end it with `event: error`."""
    converter = StreamConverter(client_model, outcome)
    yield converter.start()
    try:
        async for chunk in chunks:
            out = converter.feed(chunk)
            if out:
                yield out
    except AnthropicError as exc:
        outcome.error = exc
        yield sse_error(exc.error_type, exc.message)
        exc.sent_to_client = True  # type: ignore[attr-defined]
        raise
    yield converter.finish()


@step("stream-response")
async def stream_response(
    chunks: AsyncIterator[dict[str, Any]], client_model: str, outcome: StreamOutcome
) -> AsyncIterator[bytes]:
    """Task: the whole stream conversion, one task run from first to last event."""
    async for event in convert_stream(chunks, client_model, outcome):
        yield event
