"""What a coordinator answers: typed results that `src/api` turns into HTTP responses.

Coordinators decide what the client gets (a message, a stream of Anthropic events, an
error); how that becomes a status line, headers and bytes is the web side's business.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from src.core.errors import AnthropicError


@dataclass(frozen=True, slots=True)
class JsonReply:
    """A whole JSON answer: a message, a token count."""

    body: Any
    upstream_model: str | None = None  # which upstream model answered (a fallback may)


@dataclass(frozen=True, slots=True)
class StreamReply:
    """Anthropic SSE events, as bytes ready for the socket, pulled as the client reads."""

    events: AsyncIterator[bytes]
    upstream_model: str | None = None


@dataclass(frozen=True, slots=True)
class ErrorReply:
    """An Anthropic error before the first byte; its status comes with the error."""

    error: AnthropicError
    request_id: str | None = None
    upstream_model: str | None = None


Reply = JsonReply | StreamReply | ErrorReply
