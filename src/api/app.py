"""The ASGI application: routes, the one middleware, error handlers and lifespan."""

from __future__ import annotations

import asyncio
import gc
import signal
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from src import __version__
from src.api import openapi
from src.api.middleware import RequestMiddleware
from src.api.responses import error_response
from src.api.routes import count_tokens, health, messages, metrics, models, probes
from src.core.errors import AnthropicError, error_type_for_status
from src.core.settings import Settings, get_settings

if TYPE_CHECKING:
    from src.coordinators.runtime import Runtime

log = structlog.get_logger("oas.app")


def reload_on_sighup(runtime: Any) -> None:
    """SIGHUP re-reads the OAS_CONFIG file (`oas config reload` sends it), on the event
    loop, between requests: none is dropped, each sees the old rules or the new."""
    if threading.current_thread() is not threading.main_thread():
        return  # signals reach only the main thread (an app served from a test thread)
    try:
        asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, runtime.reload_config)
    except (NotImplementedError, RuntimeError, ValueError):  # no SIGHUP on this platform
        log.info("config reload on SIGHUP is not available here")


def create_app(settings: Settings | None = None, runtime: Runtime | None = None) -> FastAPI:
    """Build the app. `runtime` may be given (tests); otherwise one is made at start-up."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        from src.coordinators.runtime import Runtime

        own = runtime is None
        rt = runtime or Runtime.create(settings)
        app.state.runtime = rt
        if own:
            rt.start()
            reload_on_sighup(rt)
            # Everything imported at start-up lives as long as the process: move it out of
            # the collector's way, so full collections stay short on the request path.
            gc.collect()
            gc.freeze()
        try:
            yield
        finally:
            if own:
                await rt.aclose()

    app = FastAPI(
        title="oas", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None
    )
    app.include_router(messages.router)
    app.include_router(count_tokens.router)
    app.include_router(models.router)
    app.include_router(health.router)
    app.include_router(metrics.router)
    app.include_router(probes.router)
    openapi.install(app)

    @app.exception_handler(AnthropicError)
    async def _anthropic(request: Request, exc: AnthropicError) -> Response:
        return error_response(exc, request.scope.get("state", {}).get("request_id"))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        kind = error_type_for_status(exc.status_code)
        message = "Not found" if exc.status_code == 404 else str(exc.detail)
        if exc.status_code == 405:
            message = f"Method {request.method} not allowed for {request.url.path}"
        error = AnthropicError(kind, message, status=exc.status_code)
        return error_response(error, request.scope.get("state", {}).get("request_id"))

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        error = AnthropicError("invalid_request_error", str(exc.errors()[0].get("msg", "invalid")))
        return error_response(error, request.scope.get("state", {}).get("request_id"))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error", path=request.url.path)
        error = AnthropicError("api_error", f"Internal error: {type(exc).__name__}")
        return error_response(error, request.scope.get("state", {}).get("request_id"))

    app.add_middleware(
        RequestMiddleware,
        api_keys=[k.get_secret_value() for k in settings.api_keys],
        clients=lambda: settings.config.client_table,
    )
    return app
