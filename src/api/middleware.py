"""One plain ASGI middleware for what every response needs: a request id, the client's
key checked (an `OAS_API_KEYS` key, or a named client's from the config file: its name goes
to `scope["state"]["client"]`), and the request's ids bound into every log line it causes.

Plain ASGI rather than `BaseHTTPMiddleware`, which would buffer and slow down streams.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable

import orjson
import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from src.core.clients import Client, ClientTable
from src.core.errors import AnthropicError
from src.core.ids import request_id as new_request_id

log = structlog.get_logger("oas.http")

# Paths answered without a client key: liveness, and Claude Code's start-up probes.
OPEN_PATHS = frozenset({"/health", "/", "/api/hello", "/api/event_logging/batch"})


_NO_CLIENTS = ClientTable([])


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return None


class RequestMiddleware:
    """Request id header, client-key check and log context for every HTTP request."""

    def __init__(
        self, app: ASGIApp, api_keys: list[str], clients: Callable[[], ClientTable] | None = None
    ) -> None:
        self.app = app
        self.api_keys = [k.encode() for k in api_keys]
        # Read per request: a config reload swaps the table without restarting the app.
        self.clients = clients or (lambda: _NO_CLIENTS)

    def _authorized(self, scope: Scope) -> tuple[bool, Client | None]:
        """(whether the request may proceed, the named client whose key it carries)."""
        clients = self.clients()
        if (not self.api_keys and not clients) or scope["path"] in OPEN_PATHS:
            return True, None
        # Either header may carry the key (Claude Code sends `x-api-key` for
        # ANTHROPIC_API_KEY and a bearer token for ANTHROPIC_AUTH_TOKEN, sometimes both).
        supplied = [_header(scope, b"x-api-key") or ""]
        auth = _header(scope, b"authorization") or ""
        if auth[:7].lower() == "bearer ":
            supplied.append(auth[7:].strip())
        candidates = [s.encode("latin-1") for s in supplied if s]
        ok = False
        for candidate in candidates:
            for key in self.api_keys:  # no early exit: time does not say which key matched
                ok |= hmac.compare_digest(candidate, key)
        client = clients.identify(candidates) if clients else None
        return ok or client is not None, client

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = new_request_id()
        scope.setdefault("state", {})["request_id"] = rid
        session = _header(scope, b"x-claude-code-session-id")
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(
            request_id=rid, **({"session_id": session} if session else {})
        )
        started = time.perf_counter()
        status_holder = [0]
        rid_header = (b"request-id", rid.encode())

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), rid_header]
                status_holder[0] = message["status"]
            await send(message)

        authorized, client = self._authorized(scope)
        if client is not None:
            scope["state"]["client"] = client.name
            structlog.contextvars.bind_contextvars(client=client.name)
        if not authorized:
            error = AnthropicError("authentication_error", "invalid x-api-key")
            await _send_error(send_with_id, error, rid)
            log.info("request", method=scope["method"], path=scope["path"], status=401)
            return
        try:
            await self.app(scope, receive, send_with_id)
        except Exception as exc:
            # Here rather than in Starlette's outermost handler, so that this response too
            # carries the request id; the trace goes to the log, never to the client.
            log.exception("unhandled error", path=scope["path"])
            if status_holder[0]:
                raise  # the response had started: nothing sound can be sent any more
            error = AnthropicError("api_error", f"Internal error: {type(exc).__name__}")
            await _send_error(send_with_id, error, rid)
        finally:
            if scope["path"] not in ("/health",):
                log.info(
                    "request",
                    method=scope["method"],
                    path=scope["path"],
                    status=status_holder[0],
                    ms=round((time.perf_counter() - started) * 1000, 1),
                )


async def _send_error(send: Send, error: AnthropicError, rid: str) -> None:
    body = orjson.dumps(error.body(rid))
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if error.status >= 500:
        headers.append((b"x-should-retry", b"true"))
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
