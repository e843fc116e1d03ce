"""Record every HTTP exchange an ASGI app serves: what a client really sent, what it got.

Wrapping `oas` in `RecordingApp` lets a test see the whole conversation of a real client
(Claude Code's probes, telemetry posts, token counts and messages) and check each answer,
without changing `oas` itself. Bodies are kept whole; this is for tests, not production.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send


@dataclass
class Exchange:
    """One request and its response, as bytes on the wire (headers lower-cased)."""

    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes = b""
    status: int = 0
    response_headers: dict[str, str] = field(default_factory=dict)
    response_body: bytes = b""
    complete: bool = False  # the response body ended (`more_body` false)

    def json(self) -> Any:
        return orjson.loads(self.body) if self.body else None

    def response_json(self) -> Any:
        return orjson.loads(self.response_body)

    @property
    def is_stream(self) -> bool:
        return self.response_headers.get("content-type", "").startswith("text/event-stream")

    def __repr__(self) -> str:
        return f"<Exchange {self.method} {self.path} -> {self.status}>"


class RecordingApp:
    """ASGI wrapper that appends an `Exchange` to `exchanges` for each HTTP request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.exchanges: list[Exchange] = []
        self._lock = threading.Lock()

    def clear(self) -> None:
        with self._lock:
            self.exchanges.clear()

    def snapshot(self) -> list[Exchange]:
        with self._lock:
            return list(self.exchanges)

    def __getattr__(self, name: str) -> Any:
        # uvicorn and tests reach through to the wrapped app (e.g. `app.state`).
        return getattr(self.app, name)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        exchange = Exchange(
            scope["method"], scope["path"], scope.get("query_string", b"").decode(), headers
        )
        with self._lock:
            self.exchanges.append(exchange)
        body_parts: list[bytes] = []
        response_parts: list[bytes] = []

        async def recording_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                body_parts.append(message.get("body", b""))
                exchange.body = b"".join(body_parts)
            return message

        async def recording_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                exchange.status = message["status"]
                exchange.response_headers = {
                    k.decode("latin-1").lower(): v.decode("latin-1")
                    for k, v in message.get("headers", [])
                }
            elif message["type"] == "http.response.body":
                response_parts.append(message.get("body", b""))
                exchange.response_body = b"".join(response_parts)
                if not message.get("more_body", False):
                    exchange.complete = True
            await send(message)

        await self.app(scope, recording_receive, recording_send)


class RecordedOas:
    """An `oas` HTTP front on a free loopback port whose exchanges are recorded.

    It serves a given runtime, so a test can put a recorded front on any `oas` instance
    (tracked or not) and see exactly what a client sent and got.
    """

    def __init__(self, settings: Any, runtime: Any) -> None:
        from src.api.app import create_app
        from tests.support.server import ThreadedServer

        self.runtime = runtime
        self.app = RecordingApp(create_app(settings, runtime))
        self.server = ThreadedServer(self.app).start()
        self.url = self.server.url

    @property
    def exchanges(self) -> list[Exchange]:
        return self.app.snapshot()

    def stop(self) -> None:
        self.server.stop()
