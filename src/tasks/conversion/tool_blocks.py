"""The part of the stream converter that turns the model's tool calls into blocks.

OpenAI streams a tool call as fragments of its arguments, calls interleaved by index;
Anthropic wants one `tool_use` block per call, opened once and closed before the next.
Fragments of a call that cannot open yet wait (`ToolCalls`), arguments are repaired as
they stream (`arguments.py`), and a call of one of `oas`'s server tools becomes a
`server_tool_use` block. `StreamConverter` mixes this in.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson

from src.core.ids import server_tool_use_id
from src.core.metrics import metrics
from src.tasks.conversion.tool_calls import ToolCall
from src.tasks.server_tools.base import ToolCall as ServerToolCall

if TYPE_CHECKING:
    from src.tasks.conversion.stream import StreamConverter


class ToolBlocks:
    """Tool-call fragments in, `tool_use` (or `server_tool_use`) blocks out."""

    def _tool_call(self: StreamConverter, fragment: dict[str, Any]) -> bytes:
        call, arguments = self.tools.route(fragment)
        if call.block is None:
            if not self.tools.may_open(call, self.open_kind == "tool_use"):
                call.pending.append(arguments)
                return b""
            out = self._open_tool(call)
            return out + self._arguments(call, arguments) + self._open_waiting()
        if call is self.tools.current and self.open_kind == "tool_use":
            return self._arguments(call, arguments) + self._open_waiting()
        self.tools.lost(call, arguments)
        return b""

    def _open_tool(self: StreamConverter, call: ToolCall) -> bytes:
        out = self._close()  # the open block first: it may be the previous call's
        self.tools.begin(call)
        server = self.server_tools.find(call.name) if self.server_tools is not None else None
        if server is not None:
            call.server = server
            call.tool_use_id = server_tool_use_id(server.use_id_prefix)
            block = server.use_block(ServerToolCall(call.tool_use_id, call.name, {}))
        else:
            block = {"type": "tool_use", "id": call.tool_use_id, "name": call.name, "input": {}}
        out += self._open("tool_use", block)
        call.block = self.index
        self.outcome.tool_calls.append(call.name)
        pending, call.pending = call.pending, []
        for arguments in pending:
            out += self._arguments(call, arguments)
        return out

    def _arguments(self: StreamConverter, call: ToolCall, arguments: str) -> bytes:
        text = call.arguments.feed(arguments) if arguments else ""
        if not text:
            return b""
        return (
            self._delta_prefix
            + b'{"type":"input_json_delta","partial_json":'
            + orjson.dumps(text)
            + b"}}\n\n"
        )

    def _open_waiting(self: StreamConverter) -> bytes:
        """Calls that arrived while another was still open, once that one is settled."""
        out = b""
        while (call := self.tools.next_waiting()) is not None:
            out += self._open_tool(call)
        return out

    def _close_tool(self: StreamConverter, call: ToolCall | None) -> bytes:
        if call is None:
            return b""
        rest = call.arguments.finish()
        out = self._delta({"type": "input_json_delta", "partial_json": rest}) if rest else b""
        if call.server is not None:
            used = ServerToolCall(call.tool_use_id, call.name, call.arguments.value)
            self.server_calls.append((call.server, used))
            self._keep(call.server.use_block(used))
        else:
            self._keep(
                {
                    "type": "tool_use",
                    "id": call.tool_use_id,
                    "name": call.name,
                    "input": call.arguments.value,
                }
            )
        if call.arguments.repaired or call.arguments.invalid:
            metrics.record_tool_arguments(
                call.name, repaired=call.arguments.repaired, invalid=call.arguments.invalid
            )
            self.outcome.tool_problems[call.name] = call.arguments.problems
        return out
