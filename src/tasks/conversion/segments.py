"""The part of the stream converter that serves a server-tool loop.

When `oas` runs server tools, one Anthropic message spans several upstream answers
(segments): after each, the model's calls of server tools are run, their result blocks are
shown, and the segment is turned back into the assistant message that continues the
conversation upstream. OpenRouter's web search results also arrive mid-answer and are
shown as Anthropic's search blocks. `StreamConverter` mixes this in.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson

from src.core.ids import server_tool_use_id
from src.schemas.anthropic import RedactedThinkingBlock, ThinkingBlock
from src.tasks.conversion.finish import add_usage
from src.tasks.conversion.sse import BLOCK_STOP, sse
from src.tasks.conversion.thinking import reasoning_details
from src.tasks.conversion.tool_calls import ToolCall, ToolCalls
from src.tasks.server_tools import web_search

if TYPE_CHECKING:
    from src.tasks.conversion.stream import StreamConverter


class Segments:
    """Segments, server-tool result blocks and web search blocks (see the module doc)."""

    # set by StreamConverter; declared here for what this mixin assigns
    finish_reason: str | None
    native_finish_reason: str | None
    matched_stop: Any
    server_calls: list[tuple[Any, Any]]
    _segment: list[dict[str, Any]] | None

    def _search_results(self: StreamConverter, delta: dict[str, Any]) -> bytes:
        """New web search results: cite them on the text they informed, then show the
        search as a `server_tool_use` + `web_search_tool_result` pair."""
        assert self.search is not None
        hits = self.search.feed(delta)
        if not hits:
            return b""
        out = b""
        if self.open_kind == "text":
            for hit in hits:
                out += self._delta(self.search.citation_delta(hit))
        out += self._close()
        use_id = server_tool_use_id()
        out += self.search.block_events(self.index + 1, use_id, hits)
        self.index += 2
        if self.content is not None:
            self.content += [
                web_search.use_block(use_id, self.search.query),
                web_search.result_block(use_id, hits),
            ]
        return out

    def end_segment(self: StreamConverter) -> bytes:
        """Close what this upstream answer opened; its server calls are in `server_calls`."""
        out = self._close()
        for call in self.tools.unopened():
            out += self._open_tool(call) + self._close()
        return out

    @property
    def client_tool_calls(self: StreamConverter) -> int:
        """Calls in this segment that the client, not oas, must answer."""
        return sum(1 for c in self.tools.calls if c.block is not None and c.server is None)

    def segment_message(self: StreamConverter) -> dict[str, Any]:
        """This segment as the assistant message that continues the conversation upstream."""
        blocks = self._segment or []
        thinking = [
            ThinkingBlock.model_validate(b)
            if b["type"] == "thinking"
            else RedactedThinkingBlock.model_validate(b)
            for b in blocks
            if b["type"] in ("thinking", "redacted_thinking")
        ]
        text = "".join(b["text"] for b in blocks if b["type"] == "text")
        message: dict[str, Any] = {"role": "assistant", "content": text or None}
        calls = [c for c in self.tools.calls if c.block is not None]
        if calls:
            message["tool_calls"] = [
                {
                    "id": self.upstream_call_id(c),
                    "type": "function",
                    "function": {
                        "name": c.name,
                        "arguments": orjson.dumps(c.arguments.value).decode(),
                    },
                }
                for c in calls
            ]
        if thinking:
            message["reasoning_details"] = reasoning_details(thinking)
        return message

    @staticmethod
    def upstream_call_id(call: ToolCall) -> str:
        """The id a call goes back upstream with: its own, or ours when it had none."""
        return call.upstream_id or call.tool_use_id

    def next_segment(self: StreamConverter) -> None:
        """Start on the next upstream answer: block numbering and usage carry on."""
        self._earlier_usage = add_usage(self._earlier_usage, self.outcome.raw_usage)
        self.outcome.raw_usage = None
        self.finish_reason = None
        self.native_finish_reason = None
        self.matched_stop = None
        self.tools = ToolCalls(self.schemas)
        self.server_calls = []
        if self._segment is not None:
            self._segment = []

    def emit_blocks(self: StreamConverter, blocks: list[dict[str, Any]]) -> bytes:
        """Whole blocks (server tool results), each started with its content and stopped."""
        out = self._close()
        for block in blocks:
            self.index += 1
            out += sse(
                "content_block_start",
                {"type": "content_block_start", "index": self.index, "content_block": block},
            )
            out += BLOCK_STOP + str(self.index).encode() + b"}\n\n"
            if self.content is not None:
                self.content.append(block)
        return out
