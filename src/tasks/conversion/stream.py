"""stream-response: OpenAI chat completion chunks in, Anthropic SSE events out.

One converter per stream, fed chunk by chunk; it writes bytes ready for the socket, so
the per-chunk path for text is a dict lookup, one `orjson.dumps` and a bytes join
(precomputed `content_block_delta` prefix per block, no Pydantic). Blocks open in the
order the upstream sends their parts: thinking (`reasoning_details` or `reasoning`), text,
tool calls, each tool call in its own block.

A non-stream completion goes through the same converter as one chunk (see
`response.py`), so both paths give the same content by construction.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import orjson

from src.core.errors import AnthropicError
from src.core.ids import message_id
from src.schemas.anthropic import MessagesRequest
from src.services.upstream.base import chunk_batches
from src.services.upstream.errors import upstream_stream_error
from src.tasks.conversion.finish import add_usage, anthropic_usage, stop_details
from src.tasks.conversion.segments import Segments
from src.tasks.conversion.sse import BLOCK_STOP, sse, sse_error
from src.tasks.conversion.thinking import (
    redacted_data_for,
    signature_for,
    thinking_hidden,
)
from src.tasks.conversion.tool_blocks import ToolBlocks
from src.tasks.conversion.tool_calls import ToolCalls
from src.tasks.conversion.tools import tool_schemas
from src.tasks.server_tools import web_search
from src.tasks.server_tools.base import ServerToolLookup
from src.tasks.server_tools.base import ToolCall as ServerToolCall
from src.tasks.server_tools.web_search import WebSearchStream
from src.tracking import annotate, step

_PING = sse("ping", {"type": "ping"})

#: the run tag of an answer whose upstream never said why it ended (no `finish_reason`)
NO_FINISH_REASON_TAG = "no-finish-reason"


@dataclass
class StreamOutcome:
    """What a stream turned out to be, for usage records and the dashboard."""

    message_id: str = ""
    stop_reason: str | None = None
    stop_sequence: str | None = None
    usage: dict[str, Any] = field(default_factory=dict)
    raw_usage: dict[str, Any] | None = None
    first_token_at: float | None = None
    provider: str | None = None
    chunks: int = 0
    tool_calls: list[str] = field(default_factory=list)
    tool_problems: dict[str, list[str]] = field(default_factory=dict)
    error: AnthropicError | None = None


class StreamConverter(Segments, ToolBlocks):
    """Turns one upstream stream into Anthropic events, block by block.

    `keep_content=True` also assembles the content blocks (for a non-stream answer).
    """

    def __init__(
        self,
        client_model: str,
        outcome: StreamOutcome | None = None,
        request: MessagesRequest | None = None,
        keep_content: bool = False,
        server_tools: ServerToolLookup | None = None,
        search: WebSearchStream | None = None,
    ) -> None:
        self.model = client_model
        self.outcome = outcome or StreamOutcome()
        self.outcome.message_id = message_id()
        self.index = -1
        self.open_kind: str | None = None  # "text" | "thinking" | "tool_use"
        self.finish_reason: str | None = None
        self.native_finish_reason: str | None = None
        self.matched_stop: Any = None
        self.stop_sequences = request.stop_sequences if request else None
        self.hide_thinking = thinking_hidden(request)
        self.content: list[dict[str, Any]] | None = [] if keep_content else None
        self.schemas = tool_schemas(request) if request is not None else None
        if self.schemas is not None and server_tools is not None:
            # The server tools' functions were offered too: their arguments are checked alike.
            self.schemas = {
                **self.schemas,
                **{
                    f["function"]["name"]: f["function"].get("parameters") or {}
                    for f in server_tools.functions()
                },
            }
        self.tools = ToolCalls(self.schemas)
        # Server tools (run by oas): their calls become their own blocks, and each upstream
        # answer is a segment whose blocks are kept to continue the conversation upstream.
        self.server_tools = server_tools
        self.server_calls: list[tuple[Any, ServerToolCall]] = []
        self._segment: list[dict[str, Any]] | None = [] if server_tools is not None else None
        self._keeping = keep_content or server_tools is not None
        self._earlier_usage: dict[str, Any] | None = None
        self.search = search  # OpenRouter's web search results, shown as Anthropic's blocks
        self.message_fields: dict[str, Any] = {}
        self._delta_prefix = b""
        self._pieces: list[str] = []  # text of the open text/thinking block (keep_content)
        self._pending_space = ""  # whitespace that may yet start a text block
        self._thinking_meta: dict[str, Any] = {}
        self._thinking_index: Any = None

    # -- events -------------------------------------------------------------------------

    def start(self) -> bytes:
        """`message_start` and a `ping`, sent as soon as the upstream accepted the request."""
        message: dict[str, Any] = {
            "id": self.outcome.message_id,
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {
                "input_tokens": 0,
                "output_tokens": 0,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 0,
            },
        }
        return sse("message_start", {"type": "message_start", "message": message}) + _PING

    def _open(self, kind: str | None, block: dict[str, Any]) -> bytes:
        out = self._close()
        self.index += 1
        self.open_kind = kind
        self._delta_prefix = (
            b'event: content_block_delta\ndata: {"type":"content_block_delta","index":'
            + str(self.index).encode()
            + b',"delta":'
        )
        if self.outcome.first_token_at is None:
            self.outcome.first_token_at = time.time()
        return out + sse(
            "content_block_start",
            {
                "type": "content_block_start",
                "index": self.index,
                "content_block": block,
            },
        )

    def _delta(self, delta: dict[str, Any]) -> bytes:
        return self._delta_prefix + orjson.dumps(delta) + b"}\n\n"

    def _close(self) -> bytes:
        kind = self.open_kind
        if kind is None:
            return b""
        out = b""
        if kind == "thinking":
            signature = signature_for(self._thinking_meta)
            out += self._delta({"type": "signature_delta", "signature": signature})
            self._keep(
                {"type": "thinking", "thinking": "".join(self._pieces), "signature": signature}
            )
        elif kind == "text":
            self._keep({"type": "text", "text": "".join(self._pieces)})
        elif kind == "tool_use":
            out += self._close_tool(self.tools.current)
        self.open_kind = None
        return out + BLOCK_STOP + str(self.index).encode() + b"}\n\n"

    def _keep(self, block: dict[str, Any]) -> None:
        if self.content is not None:
            self.content.append(block)
        if self._segment is not None:
            self._segment.append(block)
        self._pieces = []

    # -- chunks -------------------------------------------------------------------------

    def feed(self, chunk: dict[str, Any]) -> bytes:
        """The events for one upstream chunk (often empty bytes)."""
        if (error := chunk.get("error")) is not None:
            raise upstream_stream_error(error)
        self.outcome.chunks += 1
        if (usage := chunk.get("usage")) is not None:
            self.outcome.raw_usage = usage
        if self.outcome.provider is None and (provider := chunk.get("provider")):
            self.outcome.provider = provider  # OpenRouter names who really answered
        choices = chunk.get("choices")
        if not choices:
            return b""
        choice = choices[0]
        delta = choice.get("delta") or {}
        out = b""
        details = delta.get("reasoning_details")
        if details:
            out += self._reasoning_details(details)
        elif reasoning := delta.get("reasoning") or delta.get("reasoning_content"):
            out += self._thinking(reasoning, None)
        if self.search is not None and delta.get("annotations"):
            out += self._search_results(delta)
        text = delta.get("content")
        if text:
            out += self._text(text)
        if refusal := delta.get("refusal"):
            out += self._text(refusal)
        if calls := delta.get("tool_calls"):
            for call in calls:
                out += self._tool_call(call)
        if finish := choice.get("finish_reason"):
            if finish == "error":
                raise upstream_stream_error(
                    choice.get("error") or "The upstream ended the stream with an error."
                )
            self.finish_reason = finish
            self.native_finish_reason = (
                choice.get("native_finish_reason") or self.native_finish_reason
            )
            self.matched_stop = choice.get("stop_reason") or choice.get("matched_stop")
        return out

    def _text(self, text: str) -> bytes:
        out = b""
        if self.open_kind != "text":
            if not text.strip():  # whitespace alone starts no block (Anthropic sends none)
                self._pending_space += text
                return b""
            text, self._pending_space = self._pending_space + text, ""
            out = self._open("text", {"type": "text", "text": ""})
        if self._keeping:
            self._pieces.append(text)
        return (
            out
            + self._delta_prefix
            + b'{"type":"text_delta","text":'
            + orjson.dumps(text)
            + b"}}\n\n"
        )

    # -- thinking -----------------------------------------------------------------------

    def _reasoning_details(self, details: list[dict[str, Any]]) -> bytes:
        out = b""
        for detail in details:
            if not isinstance(detail, dict):
                continue
            kind = detail.get("type")
            if kind == "reasoning.encrypted":
                if detail.get("data"):
                    block = {"type": "redacted_thinking", "data": redacted_data_for(detail)}
                    out += self._open(None, block)
                    self._keep(block)
                    out += self._close_bare()
            else:
                text = detail.get("summary") if kind == "reasoning.summary" else detail.get("text")
                out += self._thinking(text or "", detail)
        return out

    def _close_bare(self) -> bytes:
        """Stop a block that has no deltas (redacted thinking)."""
        return BLOCK_STOP + str(self.index).encode() + b"}\n\n"

    def _thinking(self, text: str, detail: dict[str, Any] | None) -> bytes:
        kind = (detail or {}).get("type") or "reasoning.text"
        index = (detail or {}).get("index")
        meta = self._thinking_meta
        out = b""
        if (
            self.open_kind != "thinking"
            or meta.get("type") != kind
            or (index is not None and self._thinking_index not in (None, index))
            or (text and meta.get("signature"))
        ):
            if not text and not (detail and detail.get("signature")):
                return b""
            out += self._open("thinking", {"type": "thinking", "thinking": "", "signature": ""})
            self._thinking_meta = meta = {"type": kind}
            self._thinking_index = index
        if index is not None:
            self._thinking_index = index
        if detail:
            for key in ("signature", "format", "id"):
                if detail.get(key):
                    meta[key] = detail[key]
        if text and not self.hide_thinking:
            if self._keeping:
                self._pieces.append(text)
            out += self._delta({"type": "thinking_delta", "thinking": text})
        return out

    # -- the end ------------------------------------------------------------------------

    def finish(
        self,
        stop_reason: str | None = None,
        server_tool_use: dict[str, int] | None = None,
        message_fields: dict[str, Any] | None = None,
    ) -> bytes:
        """Close the last block and end the message with its stop reason and usage.

        `stop_reason` overrides the upstream's (`pause_turn` when a server-tool loop ran
        out of budget); `server_tool_use` counts go into `usage.server_tool_use`;
        `message_fields` are top-level fields of the message (code execution's
        `container`), sent in the final `message_delta`'s `delta` as Anthropic does.
        """
        self.message_fields = message_fields or {}
        out = self._close()
        for call in self.tools.unopened():
            out += self._open_tool(call) + self._close()
        reason, sequence = stop_details(
            self.finish_reason,
            self.native_finish_reason,
            self.tools.opened > 0,
            self.matched_stop,
            self.stop_sequences,
        )
        if stop_reason is not None:
            reason, sequence = stop_reason, None
        raw_usage = add_usage(self._earlier_usage, self.outcome.raw_usage)
        self.outcome.raw_usage = raw_usage  # every model call of the answer (cost included)
        usage = anthropic_usage(raw_usage)
        if self.search is not None and (searches := self.search.requests(raw_usage)):
            usage = web_search.add_server_tool_usage(usage, searches)
        if server_tool_use:
            usage["server_tool_use"] = {**usage.get("server_tool_use", {}), **server_tool_use}
        self.outcome.stop_reason = reason
        self.outcome.stop_sequence = sequence
        self.outcome.usage = usage
        if self.finish_reason is None:  # `[DONE]` without a reason: taken as `end_turn`
            annotate(tags=[NO_FINISH_REASON_TAG])
        if self.outcome.tool_problems:
            annotate(tool_argument_problems=self.outcome.tool_problems)
        out += sse(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": reason, "stop_sequence": sequence, **self.message_fields},
                "usage": usage,
            },
        )
        return out + sse("message_stop", {"type": "message_stop"})

    def message(self) -> dict[str, Any]:
        """The whole message (after `finish()`, with `keep_content=True`)."""
        return {
            "id": self.outcome.message_id,
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": self.content or [],
            "stop_reason": self.outcome.stop_reason,
            "stop_sequence": self.outcome.stop_sequence,
            "usage": self.outcome.usage,
            **self.message_fields,
        }


@step("stream-response")
async def stream_response(
    chunks: AsyncIterator[dict[str, Any]], converter: StreamConverter, lead: bytes = b""
) -> AsyncIterator[bytes]:
    """Task: one upstream answer converted as it streams, first chunk to last (a whole
    request has one, or one per model call when oas runs server tools).

    The chunks of one network read (`chunk_batches`) become one bytes object, so they
    pass the layers above and reach the socket in one write; a chunk alone is never held
    back for another. `lead` (the answer's `message_start`) goes out with the first
    read's events: the primed first chunks are in hand, so it waits for nothing. An error
    ends the stream with `event: error` after what came before it (and is raised again,
    marked as sent).
    """
    feed = converter.feed
    parts: list[bytes] = [lead] if lead else []
    try:
        async for batch in chunk_batches(chunks):
            for chunk in batch:
                parts.append(feed(chunk))
            out, parts = b"".join(parts), []
            if out:
                yield out
        if parts:  # no chunk at all: the lead alone
            yield b"".join(parts)
    except AnthropicError as exc:
        converter.outcome.error = exc
        yield b"".join(parts) + sse_error(exc.error_type, exc.message)
        exc.sent_to_client = True
        raise
