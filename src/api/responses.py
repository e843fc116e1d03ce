"""Responses in Anthropic's shapes: JSON bodies via orjson, errors, SSE streams."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson
from starlette.responses import Response, StreamingResponse

from src.core.errors import AnthropicError

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json",
                    headers=headers)


def error_response(error: AnthropicError, request_id: str | None = None) -> Response:
    """The error body and status Anthropic would send, with `retry-after` when known."""
    headers = {"retry-after": error.retry_after} if error.retry_after else None
    if error.status == 529 or error.status >= 500:
        headers = {**(headers or {}), "x-should-retry": "true"}
    return json_response(error.body(request_id), error.status, headers)


def sse_response(events: AsyncIterator[bytes]) -> StreamingResponse:
    return StreamingResponse(events, media_type="text/event-stream", headers=SSE_HEADERS)
