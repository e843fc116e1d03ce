"""What Claude Code and load balancers probe: fast, harmless answers, never an error."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from src.api.responses import json_response

router = APIRouter()


@router.api_route("/", methods=["GET", "HEAD"], include_in_schema=False)
async def root(request: Request) -> Response:
    if request.method == "HEAD":
        return Response(status_code=200)
    return json_response(
        {
            "name": "oas",
            "status": "ok",
            "endpoints": [
                "/v1/messages",
                "/v1/messages/count_tokens",
                "/v1/models",
                "/health",
                "/health/detailed",
            ],
        }
    )


@router.api_route("/api/hello", methods=["GET", "HEAD"], include_in_schema=False)
async def hello() -> Response:
    return Response(status_code=200)


@router.post("/api/event_logging/batch", include_in_schema=False)
async def event_logging(request: Request) -> Response:
    """Claude Code's telemetry: read and discarded, so nothing leaves this machine."""
    async for _ in request.stream():
        pass
    return json_response({"accepted_count": 0, "rejected_count": 0})
