"""GET /health (liveness) and GET /health/detailed (what an operator checks first)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from src.api.responses import json_response
from src.coordinators.health import detailed_health

router = APIRouter()


@router.get("/health")
async def health() -> Response:
    """Liveness: no upstream call, no Prefect call."""
    return json_response({"status": "ok"})


@router.get("/health/detailed")
async def health_detailed(request: Request) -> Response:
    """Version, uptime, upstream reachability, Prefect tracking, model mapping, MCP servers."""
    return json_response(await detailed_health(request.app.state.runtime))
