"""The streaming response of `POST /v1/messages`: SSE bytes to the socket, nothing between.

Starlette's `StreamingResponse` costs, per request, an anyio task group of two tasks and a
cancel scope (to notice a client that left), and per chunk a pass through every
middleware's `send` wrapper (Starlette's two exception layers, the error middleware, ours).
Those wrappers act on `http.response.start` alone, so here the start goes through them
and each body chunk goes to the server's own `send` when the server offers it
(`BODY_SEND`, set by `GuardedHttpToolsProtocol` in `connections.py`); under another
server the body takes the ordinary path.

The body is written by a task of its own (`_pump`). A paced stream wakes a task once per
network read, and a task resumes every coroutine it is suspended in: from the request's
task that is the server's, the middlewares' and the router's twenty frames before the
events' generators, for every chunk. A client that leaves is noticed by one asyncio task
waiting on `receive`, which cancels the pump: the events' source is then closed at once
(shielded), so the upstream connection is released, not left to the collector.

The bytes are the same as before: one chunked-encoding chunk per item of `events`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

#: the scope extension under which the HTTP server offers its own `send` for body messages
BODY_SEND = "oas.body_send"


class SSEResponse(Response):
    """An event stream from `events`; closes `events` however the response ends."""

    media_type = "text/event-stream"

    def __init__(self, events: AsyncIterator[bytes], headers: dict[str, str] | None = None):
        self.body_iterator = events
        self.status_code = 200
        self.background = None
        self.init_headers(headers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
        offered = scope.get("extensions", {}).get(BODY_SEND)
        body_send: Send = offered["send"] if offered else send
        # a task of its own: a chunk's wakeup resumes the events' generators only
        pump = asyncio.ensure_future(_pump(self.body_iterator, body_send))
        left = [False]

        def on_disconnect(watch: asyncio.Future[None]) -> None:
            if not watch.cancelled() and not pump.done():
                left[0] = True
                pump.cancel()

        watch = asyncio.ensure_future(_until_disconnect(receive))
        watch.add_done_callback(on_disconnect)
        try:
            await asyncio.shield(pump)
        except asyncio.CancelledError:
            if not pump.done():  # cancelled from elsewhere (shutdown): so is the pump
                pump.cancel()
                await asyncio.wait({pump})
                raise
            if not left[0]:
                raise
            # the client left: the response simply ends, as Starlette's does
        finally:
            watch.cancel()
            await _close(self.body_iterator)


async def _pump(events: AsyncIterator[bytes], body_send: Send) -> None:
    async for chunk in events:
        await body_send({"type": "http.response.body", "body": chunk, "more_body": True})
    await body_send({"type": "http.response.body", "body": b"", "more_body": False})


async def _until_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def _close(events: AsyncIterator[bytes]) -> None:
    close = getattr(events, "aclose", None)
    if close is None:
        return
    closing = asyncio.ensure_future(close())
    try:
        await asyncio.shield(closing)
    except asyncio.CancelledError:
        await closing  # finish closing even when cancelled meanwhile, then go on cancelled
        raise
