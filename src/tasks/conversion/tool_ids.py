"""`toolu_` ids for the client, the upstream's own tool-call ids on the way back.

Upstream tool-call ids are not always unique (`call_0` in every turn), well formed, or
present at all, so every tool call gets a fresh `toolu_` id. Some upstreams need their
own ids back in the history, though: Mistral checks their format, and Gemini's thought
signatures (`reasoning_details`) name the call they belong to. So the upstream id, when
it is usable, travels inside the `toolu_` id itself:

    toolu_<24 random characters>__<upstream id, base64url>

This mapping is stateless: it survives restarts, works across replicas, and replays of
stored requests resolve the same way. When the client sends the history back,
`ToolIdMap` recovers each upstream id, and falls back to the `toolu_` id when the
recovered id is missing or already taken by another call in the same conversation, so
the ids sent upstream are always unique and every result pairs with its call.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable

from src.core.ids import tool_use_id

_RANDOM_END = len("toolu_") + 24
_MARK = "__"
_MAX_UPSTREAM_ID = 96
_PRINTABLE = re.compile(r"^[\x21-\x7e]+$")


def new_tool_use_id(upstream_id: str | None = None) -> str:
    """A unique `toolu_` id, carrying `upstream_id` when it is worth sending back."""
    base = tool_use_id()
    if not upstream_id or len(upstream_id) > _MAX_UPSTREAM_ID or not _PRINTABLE.match(upstream_id):
        return base
    encoded = base64.urlsafe_b64encode(upstream_id.encode()).rstrip(b"=").decode()
    return f"{base}{_MARK}{encoded}"


def upstream_id_of(tool_use_id: str) -> str | None:
    """The upstream id inside a `toolu_` id made by `new_tool_use_id`, if any."""
    if len(tool_use_id) <= _RANDOM_END + len(_MARK) or not tool_use_id.startswith("toolu_"):
        return None
    if tool_use_id[_RANDOM_END : _RANDOM_END + len(_MARK)] != _MARK:
        return None
    encoded = tool_use_id[_RANDOM_END + len(_MARK) :]
    try:
        decoded = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    return decoded if _PRINTABLE.match(decoded) else None


class ToolIdMap:
    """The id each client `tool_use` id goes upstream as, for one conversation."""

    def __init__(self, tool_use_ids: Iterable[str] = ()) -> None:
        self._upstream: dict[str, str] = {}
        self._taken: set[str] = set()
        for client_id in tool_use_ids:
            self.add(client_id)

    def add(self, client_id: str) -> str:
        """Register a `tool_use` id from the history (first come, first served)."""
        if client_id in self._upstream:
            return self._upstream[client_id]
        candidate = upstream_id_of(client_id)
        if candidate is None or candidate in self._taken:
            candidate = client_id
        if candidate in self._taken:  # a client id equal to an earlier upstream id
            candidate = tool_use_id()
        self._taken.add(candidate)
        self._upstream[client_id] = candidate
        return candidate

    def upstream(self, client_id: str) -> str:
        """The id for a `tool_use` or `tool_result`; unknown ids pass through unchanged."""
        return self._upstream.get(client_id, client_id)
