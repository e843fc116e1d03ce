"""Connections that cannot hold `oas` hostage: deadlines for slow clients, a cap on how many.

uvicorn (with httptools) closes an idle keep-alive connection, but a connection that sends
nothing, or half a request line, stays open for ever: enough of them use up the file
descriptors, and then `/health` fails too. `GuardedHttpToolsProtocol` is uvicorn's own
protocol with three additions:

- a request head (request line and headers) must be complete within `header_timeout`
  seconds of the connection opening or of the request's first byte; otherwise the
  connection is closed (with a 408 when part of a request came);
- a request body must be complete within `body_timeout` seconds of its head (a client that
  trickles a body gets 408 and the connection is closed);
- beyond `max_connections` open connections, a new one is answered 529 `overloaded_error`
  at once and closed, before any of its bytes are parsed.

Each deadline is one timer per request, armed and cancelled on the event loop: no cost on
the streaming path. The protocol also offers each request its cycle's own `send` (the
`oas.body_send` scope extension), through which a stream's body chunks skip the
middlewares' wrappers (`sse_response.py`).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import orjson
import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

from src.api.sse_response import BODY_SEND


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    """How long a client may take to send a request, and how many may be connected."""

    header_timeout: float = 10.0
    body_timeout: float = 60.0
    max_connections: int = 2048


class GuardedConfig(uvicorn.Config):
    """uvicorn's config with the connection limits the protocol enforces (picklable, so
    `--reload` workers get them too)."""

    def __init__(self, app: Any, *, limits: ConnectionLimits, **kwargs: Any) -> None:
        super().__init__(app, http=GuardedHttpToolsProtocol, **kwargs)
        self.connection_limits = limits


def _response(status: str, error_type: str, message: str, extra: bytes = b"") -> bytes:
    body = orjson.dumps({"type": "error", "error": {"type": error_type, "message": message}})
    return (
        f"HTTP/1.1 {status}\r\ncontent-type: application/json\r\n".encode()
        + extra
        + b"connection: close\r\ncontent-length: "
        + str(len(body)).encode()
        + b"\r\n\r\n"
        + body
    )


#: refused connections that may wait (a second at most) for their request before closing
MAX_LINGERING = 128


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a request-head deadline, a body deadline and a
    connection cap (see the module docstring)."""

    #: refused connections still open, in this process (open files are counted per process)
    _lingering = 0

    def __init__(self, config: uvicorn.Config, *args: Any, **kwargs: Any) -> None:
        super().__init__(config, *args, **kwargs)
        self.limits: ConnectionLimits = getattr(config, "connection_limits", ConnectionLimits())
        self._deadline: asyncio.TimerHandle | None = None
        self._refused = False
        self._request_begun = False  # bytes of a request came since its head was due

    # -- the connection -----------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        if len(self.connections) >= self.limits.max_connections:
            self._refuse(transport)
            return
        super().connection_made(transport)
        self._arm(self.limits.header_timeout, self._head_too_slow)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        if self._refused:
            GuardedHttpToolsProtocol._lingering -= 1
            return
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            # Read and dropped, then closed: a close with unread bytes would be a reset,
            # and the client might lose the 529 it was sent.
            self.transport.close()
            return
        super().data_received(data)

    def _refuse(self, transport: asyncio.Transport) -> None:
        """529 at once, then close once the client's request is in (at most a second; at
        once when many refused connections are lingering already: they hold files too)."""
        self._refused = True
        GuardedHttpToolsProtocol._lingering += 1
        self.transport = transport
        message = (
            f"oas has {self.limits.max_connections} connections open, its limit "
            "(OAS_MAX_CONNECTIONS); try again shortly"
        )
        transport.write(
            _response("529 Overloaded", "overloaded_error", message, b"retry-after: 1\r\n")
        )
        if GuardedHttpToolsProtocol._lingering > MAX_LINGERING:
            transport.close()
        else:
            self._arm(1.0, transport.close)

    # -- deadlines ----------------------------------------------------------------------

    def _arm(self, seconds: float, callback: Any, *args: Any) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(seconds, callback, *args)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._request_begun = True
        if self._deadline is None:  # a keep-alive connection's next request
            self._arm(self.limits.header_timeout, self._head_too_slow)

    def on_headers_complete(self) -> None:
        self._disarm()
        self._request_begun = False
        super().on_headers_complete()

    def _start_asgi_task(self, cycle: RequestResponseCycle, app: Any) -> None:
        # a stream's body chunks skip the middlewares' send wrappers (see sse_response.py)
        cycle.scope.setdefault("extensions", {})[BODY_SEND] = {"send": cycle.send}
        super()._start_asgi_task(cycle, app)
        if cycle.more_body:  # its body is still coming (a pipelined one waited until now)
            self._arm(self.limits.body_timeout, self._body_too_slow, cycle)

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._disarm()

    def _head_too_slow(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        if self.cycle is not None and not self.cycle.response_complete:
            # a pipelined request begun while an answer is still going out: its deadline
            # counts once that answer is done (a 408 now would cut into it)
            self._arm(self.limits.header_timeout, self._head_too_slow)
            return
        if self._request_begun:  # part of a request came: say why it goes unanswered
            self.transport.write(
                _response(
                    "408 Request Timeout",
                    "timeout_error",
                    f"the request head did not arrive within {self.limits.header_timeout:g}s "
                    "(OAS_HEADER_TIMEOUT)",
                )
            )
        self.transport.close()

    def _body_too_slow(self, cycle: RequestResponseCycle) -> None:
        self._deadline = None
        if self.transport.is_closing() or not cycle.more_body:
            return
        if not cycle.response_started:
            self.transport.write(
                _response(
                    "408 Request Timeout",
                    "timeout_error",
                    f"the request body did not arrive within {self.limits.body_timeout:g}s "
                    "(OAS_BODY_TIMEOUT)",
                )
            )
        cycle.disconnected = True  # the app sees the client go; its answer goes nowhere
        cycle.message_event.set()
        self.transport.close()
