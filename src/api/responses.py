"""Responses in Anthropic's shapes: JSON bodies via orjson, errors, SSE streams."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import orjson
from starlette.responses import Response

from src.api.sse_response import SSEResponse
from src.coordinators.replies import JsonReply, Reply, StreamReply
from src.core.errors import AnthropicError

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}

#: which upstream model answered (a fallback may stand in for the one asked for)
UPSTREAM_MODEL_HEADER = "x-oas-upstream-model"


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        orjson.dumps(body), status_code=status, media_type="application/json", headers=headers
    )


def error_response(
    error: AnthropicError, request_id: str | None = None, headers: dict[str, str] | None = None
) -> Response:
    """The error body and status Anthropic would send, with `retry-after` when known and
    `x-should-retry` where Anthropic's SDKs should try again."""
    out = dict(headers or {})
    if error.retry_after:
        out["retry-after"] = error.retry_after
    if error.status in (408, 409, 429) or error.status >= 500:
        out["x-should-retry"] = "true"
    return json_response(error.body(request_id), error.status, out or None)


def sse_response(events: AsyncIterator[bytes], headers: dict[str, str] | None = None) -> Response:
    return SSEResponse(events, headers={**SSE_HEADERS, **(headers or {})})


def model_header(model: str | None) -> dict[str, str] | None:
    """Which upstream model answered (or failed): a fallback may have stood in. The name
    can come from the client, so anything a header cannot carry is percent-encoded."""
    return {UPSTREAM_MODEL_HEADER: quote(model[:200], safe="/:@+=,;!*'()[]~")} if model else None


def reply_response(reply: Reply) -> Response:
    """The HTTP response for what a coordinator answered."""
    headers = model_header(reply.upstream_model)
    if isinstance(reply, JsonReply):
        return json_response(reply.body, headers=headers)
    if isinstance(reply, StreamReply):
        return sse_response(reply.events, headers=headers)
    return error_response(reply.error, reply.request_id, headers)
