"""Reading a request body: bounded in size, parsed as JSON, errors in Anthropic's shape."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request

from src.core.errors import AnthropicError, invalid_request


def _too_large(limit: int) -> AnthropicError:
    return AnthropicError(
        "request_too_large", f"Request exceeds the maximum allowed size of {limit} bytes."
    )


async def read_json(request: Request, limit: int) -> Any:
    """The parsed body; 413 past `limit` bytes (checked before reading when declared)."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
    raw = b"".join(chunks)
    if not raw.strip():
        raise invalid_request("The request body is empty; a JSON object is required.")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise invalid_request(f"The request body is not valid JSON: {exc}") from None
