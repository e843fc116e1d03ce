"""GET /tool-metrics (JSON) and GET /metrics (Prometheus text format)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from src.api.responses import json_response
from src.coordinators.health import prometheus_text, tool_metrics
from src.core.metrics import PROMETHEUS_CONTENT_TYPE

router = APIRouter()


@router.get("/tool-metrics")
async def tool_metrics_json() -> Response:
    """Per tool: calls, results, errors, repaired and invalid arguments; per model: requests,
    errors, tokens and cost, since the process started."""
    return json_response(tool_metrics())


@router.get("/metrics")
async def prometheus(request: Request) -> Response:
    """Request counts, latencies, tokens, cost, upstream errors and tracking, for Prometheus."""
    return Response(prometheus_text(request.app.state.runtime), media_type=PROMETHEUS_CONTENT_TYPE)
