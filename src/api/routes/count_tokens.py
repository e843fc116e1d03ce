"""POST /v1/messages/count_tokens (also with `?beta=true`)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from src.api.body import read_json
from src.api.responses import error_response, reply_response
from src.api.routes.messages import request_context
from src.coordinators.count_tokens import handle_count_tokens
from src.core.errors import AnthropicError
from src.schemas.anthropic import MessagesRequest

router = APIRouter()


def _request_schema() -> dict[str, Any]:
    """The Messages request schema, without `max_tokens` (a count request has none)."""
    schema = MessagesRequest.model_json_schema(ref_template="#/components/schemas/{model}")
    schema["required"] = [f for f in schema.get("required", []) if f != "max_tokens"]
    return schema


@router.post(
    "/v1/messages/count_tokens",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": _request_schema()}},
        }
    },
    response_model=None,
)
async def count_message_tokens(request: Request) -> Response:
    """`{"input_tokens": N}` for a Messages request, counted for the model it maps to."""
    ctx = request_context(request)
    try:
        body = await read_json(request, request.app.state.runtime.settings.max_body_bytes)
    except AnthropicError as exc:
        return error_response(exc, ctx.request_id)
    return reply_response(await handle_count_tokens(request.app.state.runtime, body, ctx))
