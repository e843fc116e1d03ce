"""Stop work for a client that has gone away before its response started.

Starlette notices a disconnect only while it streams a response; until then (a whole,
non-stream answer being generated, or a stream still waiting for its first upstream
chunk, retries included) nothing would stop the upstream request from running to its
end for nobody. Here the request's `receive` is watched alongside the handler, and the
handler is cancelled when the client disconnects.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

from starlette.requests import Request
from starlette.responses import Response

#: nginx's "client closed request": logged, never seen by the client, which has left
CLIENT_CLOSED = 499


async def unless_disconnected(request: Request, handler: Awaitable[Response]) -> Response:
    """`await handler`, or cancel it as soon as the client disconnects (the body must have
    been read already: what `receive` yields next can only be the disconnect)."""
    work = asyncio.ensure_future(handler)
    watch = asyncio.ensure_future(_disconnected(request))
    try:
        await asyncio.wait({work, watch}, return_when=asyncio.FIRST_COMPLETED)
    except BaseException:  # this request itself was cancelled (shutdown): so is its work
        work.cancel()
        raise
    finally:
        watch.cancel()
    if work.done():
        return work.result()
    work.cancel()
    try:
        await work
    except asyncio.CancelledError:
        pass
    return Response(status_code=CLIENT_CLOSED)


async def _disconnected(request: Request) -> None:
    while (await request.receive())["type"] != "http.disconnect":
        pass
