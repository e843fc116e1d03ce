"""POST /v1/messages (also with `?beta=true`)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from src.api.body import read_json
from src.api.disconnect import unless_disconnected
from src.api.responses import error_response, reply_response
from src.coordinators.messages import handle_messages
from src.core.context import RequestContext
from src.core.errors import AnthropicError
from src.schemas.anthropic import MessagesRequest

router = APIRouter()


def request_context(request: Request) -> RequestContext:
    """The ids and client headers later steps and the dashboard want."""
    headers = request.headers
    state = request.scope.get("state", {})
    return RequestContext(
        request_id=state.get("request_id", ""),
        client=state.get("client"),
        session_id=headers.get("x-claude-code-session-id"),
        anthropic_beta=headers.get("anthropic-beta"),
        anthropic_version=headers.get("anthropic-version"),
        user_agent=headers.get("user-agent"),
        mcp_opt_in=headers.get("x-oas-mcp"),
    )


@router.post(
    "/v1/messages",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": MessagesRequest.model_json_schema(
                        ref_template="#/components/schemas/{model}"
                    )
                }
            },
        }
    },
    response_model=None,
)
async def create_message(request: Request) -> Response:
    """Create a message, stream or not, exactly as Anthropic's API does."""
    ctx = request_context(request)
    try:
        body = await read_json(request, request.app.state.runtime.settings.max_body_bytes)
    except AnthropicError as exc:
        return error_response(exc, ctx.request_id)
    runtime = request.app.state.runtime

    async def answer() -> Response:
        return reply_response(await handle_messages(runtime, body, ctx))

    return await unless_disconnected(request, answer())
