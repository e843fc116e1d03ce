"""Which upstream tool-call fragment belongs to which tool_use block.

OpenAI streams a tool call as fragments tagged with the call's `index`: the first with
`id` and `name`, the rest with pieces of `arguments`. Upstreams differ in the details,
and each difference has broken some proxy: ids missing or repeated (`call_0` in every
turn), every call at `index` 0 told apart only by a new `id`, a call's fragments
interleaved with another's. Anthropic's blocks cannot interleave, so a call that starts
while another is still being written waits (its fragments kept) until that one is
settled, then gets its own block; calls keep the order in which they started.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson
import structlog

from src.tasks.conversion.arguments import ToolArguments
from src.tasks.conversion.tool_ids import new_tool_use_id

log = structlog.get_logger("oas.tools")


@dataclass(eq=False)
class ToolCall:
    """One call the model made, from its first fragment to the end of its block."""

    slot: Any
    upstream_id: str | None = None
    name: str = ""
    pending: list[str] = field(default_factory=list)
    block: int | None = None
    tool_use_id: str = ""
    arguments: ToolArguments = field(default_factory=lambda: ToolArguments(""))
    #: the server tool (run by oas) this call belongs to; None for the client's tools
    server: Any = None

    @property
    def settled(self) -> bool:
        return self.block is not None and self.arguments.settled


class ToolCalls:
    """The tool calls of one answer; `schemas` (None: not known) checks their arguments."""

    def __init__(self, schemas: dict[str, dict[str, Any]] | None) -> None:
        self.schemas = schemas
        self.calls: list[ToolCall] = []
        self.waiting: list[ToolCall] = []
        self.current: ToolCall | None = None
        self.opened = 0
        self._by_slot: dict[Any, ToolCall] = {}
        self._upstream_ids: set[str] = set()

    def route(self, fragment: dict[str, Any]) -> tuple[ToolCall, str]:
        """The call a fragment belongs to (a new one if it starts one) and its arguments."""
        function = fragment.get("function") or {}
        upstream_id = fragment.get("id") or None
        slot = fragment.get("index")
        name = function.get("name") or ""
        call = self._by_slot.get(slot) if slot is not None else None
        reused = call is not None and call.upstream_id not in (None, upstream_id)
        if reused and name and upstream_id:
            call = None  # a new call reusing the index (some providers put all at 0)
        if call is None and slot is None:
            call = next(
                (c for c in self.calls if upstream_id and c.upstream_id == upstream_id), None
            )
            if call is None and not (upstream_id or name) and self.calls:
                call = self.calls[-1]
        if call is None:
            call = ToolCall(slot=slot if slot is not None else len(self.calls))
            self.calls.append(call)
            self._by_slot[call.slot] = call
        elif slot is not None:
            self._by_slot[slot] = call
        if name and not call.name:
            call.name = name
        if upstream_id and not call.upstream_id:
            call.upstream_id = upstream_id
        arguments = function.get("arguments")
        if arguments is not None and not isinstance(arguments, str):
            arguments = orjson.dumps(arguments).decode()
        return call, arguments or ""

    def may_open(self, call: ToolCall, tool_block_open: bool) -> bool:
        """Whether `call` gets its block now; if not, it waits its turn."""
        ahead = self.waiting and self.waiting[0] is not call
        blocked = tool_block_open and self.current is not None and not self.current.settled
        if call.name and not ahead and not blocked:
            return True
        if call not in self.waiting:
            self.waiting.append(call)
        return False

    def next_waiting(self) -> ToolCall | None:
        """The waiting call whose turn has come (the open one is settled), if any."""
        current = self.current
        if self.waiting and current is not None and current.settled and self.waiting[0].name:
            return self.waiting[0]
        return None

    def begin(self, call: ToolCall) -> None:
        """`call` gets its block: a unique `toolu_` id and its argument checker."""
        if call in self.waiting:
            self.waiting.remove(call)
        unique = call.upstream_id if call.upstream_id not in self._upstream_ids else None
        if unique:
            self._upstream_ids.add(unique)
        call.tool_use_id = new_tool_use_id(unique)
        schema = self.schemas.get(call.name) if self.schemas is not None else None
        known = self.schemas is None or call.name in self.schemas
        call.arguments = ToolArguments(call.name, schema, known)
        self.current = call
        self.opened += 1

    def unopened(self) -> list[ToolCall]:
        """Calls still waiting when the answer ends: they get their blocks last."""
        out, self.waiting = self.waiting, []
        return out

    def lost(self, call: ToolCall, arguments: str) -> None:
        """Arguments for a call whose block is already closed: they cannot be sent."""
        if arguments.strip():
            log.warning(
                "tool arguments arrived after their block closed",
                tool=call.name,
                chars=len(arguments),
            )
