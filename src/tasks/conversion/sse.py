"""Server-sent event framing in Anthropic's shape (`event: name` + `data: json`)."""

from __future__ import annotations

from typing import Any

import orjson

#: the bytes of a `content_block_stop` event up to its index (then `index}\n\n`)
BLOCK_STOP = b'event: content_block_stop\ndata: {"type":"content_block_stop","index":'


def sse(event: str, data: dict[str, Any]) -> bytes:
    """One SSE event; `data` carries its own `type` equal to `event`, as Anthropic sends."""
    return b"event: " + event.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


def sse_error(error_type: str, message: str) -> bytes:
    """The `event: error` Anthropic sends when a stream fails after it started."""
    return sse("error", {"type": "error", "error": {"type": error_type, "message": message}})
