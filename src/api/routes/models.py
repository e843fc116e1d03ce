"""GET /v1/models and GET /v1/models/{model_id}, in Anthropic's list and model shapes."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from src.api.responses import json_response
from src.coordinators.models import get_model, list_models

router = APIRouter()


@router.get("/v1/models")
async def models(
    request: Request,
    limit: int = Query(20, ge=1, le=1000),
    after_id: str | None = None,
    before_id: str | None = None,
) -> Response:
    """The aliases, the Claude names they map, and the upstream's models (newest first)."""
    runtime = request.app.state.runtime
    return json_response(
        await list_models(
            runtime.catalog, runtime.settings, limit=limit, after_id=after_id, before_id=before_id
        )
    )


@router.get("/v1/models/{model_id:path}")
async def model(request: Request, model_id: str) -> Response:
    """One model; a 404 `not_found_error` for a name this server does not list."""
    runtime = request.app.state.runtime
    return json_response(await get_model(runtime.catalog, runtime.settings, model_id))
