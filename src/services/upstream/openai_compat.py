"""The default backend: one persistent HTTP client to an OpenAI-compatible endpoint.

The client is aiohttp's: its C parser reads a streamed body for ~70 µs of CPU a chunk on
the 2-core machine this project is measured on, where httpx (httpcore, h11 and anyio
per read) took ~170 µs, and a proxy does little else per chunk (`make bench` shows it).
Streams are parsed from raw bytes (`data: ...` lines, `: comments`, `[DONE]`) with orjson.

Timeouts: connecting may take `OAS_CONNECT_TIMEOUT`; the status line may take
`OAS_FIRST_BYTE_TIMEOUT` (a model can think for minutes before it answers); once the
answer is under way, no read may wait longer than `OAS_IDLE_TIMEOUT`. A whole answer gets
that from the connection's read timeout, lowered to the idle one once the headers are in;
a stream from one lazy timer (`IdleWatch`): aiohttp's read timeout cancels and re-arms a
timer on every network read (about 4% of a paced chunk's CPU), where the watch notes the
time of each read and its timer, when due, re-arms itself for the last read's deadline.

A proxy comes from the environment (`HTTPS_PROXY`, `NO_PROXY`,
...), looked up once at start: aiohttp's `trust_env` reads the environment and `~/.netrc`
on every request, a tenth of a request's CPU.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing
from typing import Any

import aiohttp
import orjson
import structlog
from aiohttp.helpers import get_env_proxy_for_url
from yarl import URL

from src.core.errors import AnthropicError
from src.core.settings import Settings
from src.services.upstream.errors import (
    body_snippet,
    check_stream_end,
    connection_error,
    error_in_body,
    malformed,
    note_no_finish_reason,
    timeout_error,
    upstream_error,
)

log = structlog.get_logger("oas.upstream")

#: bytes of a wrong body read to say what it was
_MAX_WRONG_BODY = 65536

_SSE_FIELDS = frozenset({b"event", b"id", b"retry", b"data"})


def is_event_stream_line(line: bytes) -> bool:
    """A blank line, a `:` comment or a field of the server-sent events format."""
    line = line.rstrip(b"\r")
    return not line or line[:1] == b":" or line.split(b":", 1)[0] in _SSE_FIELDS


class OpenAICompatStream:
    """An open upstream response whose body is a chunk stream.

    What is not a stream of chunks is an error, never an empty success: a line that is not
    server-sent events, a stream with no chunk at all, and one whose body ends with neither
    a `finish_reason` nor `[DONE]` (cut short). One that ends with `[DONE]` but no
    `finish_reason` is taken as ended (`end_turn`), logged, and its run tagged
    `no-finish-reason`.
    """

    def __init__(
        self,
        response: aiohttp.ClientResponse,
        model: str,
        idle_timeout: float,
        secrets: tuple[str, ...] = (),
    ) -> None:
        self.response = response
        self.model = model
        self.idle_timeout = idle_timeout
        self.secrets = secrets

    async def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        async with aclosing(self.batches()) as batches:
            async for batch in batches:
                for chunk in batch:
                    yield chunk

    async def batches(self) -> AsyncGenerator[list[dict[str, Any]], None]:
        """The chunks one network read brought, a list per read: chunks that arrived
        together are converted and sent on together. Nothing waits for more bytes than
        the read gave; chunks parsed before a fault in the same read come out first."""
        buffer = b""
        done = False
        chunks = 0
        finished = False  # a chunk carried a finish_reason
        watch = IdleWatch(self.response, self.idle_timeout)
        try:
            read = self.response.content.readany  # b"" at the end (iter_any, one frame less)
            while raw := await read():
                watch.last = watch.clock()
                buffer += raw
                if b"\n" not in raw:
                    continue
                *lines, buffer = buffer.split(b"\n")
                batch: list[dict[str, Any]] = []
                try:
                    for line in lines:
                        if not line.startswith(b"data:"):
                            # comments (": OPENROUTER PROCESSING"), event names, blanks
                            if not is_event_stream_line(line):
                                raise malformed(
                                    self.model,
                                    "a body that is not server-sent "
                                    f"events ({body_snippet(line, self.secrets)})",
                                )
                            continue
                        data = line[5:].strip()
                        if data == b"[DONE]":
                            done = True
                            break
                        if not data:
                            continue
                        try:
                            chunk = orjson.loads(data)
                        except orjson.JSONDecodeError:
                            raise malformed(self.model, "a malformed stream chunk") from None
                        if not isinstance(chunk, dict):
                            raise malformed(self.model, "a stream chunk that is not an object")
                        if "error" in chunk and chunk["error"] is not None:
                            raise error_in_body(chunk["error"], self.model, self.secrets)
                        chunks += 1
                        if not finished and (choices := chunk.get("choices")):
                            finished = bool(choices[0].get("finish_reason"))
                        batch.append(chunk)
                except AnthropicError:
                    if batch:
                        yield batch
                    raise
                if batch:
                    yield batch
                if done:
                    check_stream_end(self.model, chunks, finished, done)
                    return
            if buffer.strip() and not is_event_stream_line(buffer):
                raise malformed(
                    self.model,
                    f"a body that is not server-sent events ({body_snippet(buffer, self.secrets)})",
                )
            check_stream_end(self.model, chunks, finished, done)
            done = True  # the body ended without [DONE] but complete: what came is all
        except TimeoutError:
            raise timeout_error(
                self.model, f"no data for {self.idle_timeout:g}s mid-answer", None
            ) from None
        except (aiohttp.ClientError, OSError) as exc:
            raise connection_error(self.model, exc, "mid-answer") from None
        finally:
            watch.cancel()
            if done and self.response.content.at_eof():
                self.response.release()  # read to its end: the connection is reused
            else:
                self.response.close()  # cut short: the upstream sees the connection end

    async def aclose(self) -> None:
        self.response.close()


class IdleWatch:
    """Fails a stream's pending read once no bytes came for `seconds` (the idle timeout),
    with the error aiohttp's own read timeout raises. The reader sets `last` to `clock()`
    at each read; the one timer re-arms itself for `last + seconds` until that passes."""

    def __init__(self, response: aiohttp.ClientResponse, seconds: float) -> None:
        self.response = response
        self.seconds = seconds
        loop = asyncio.get_running_loop()
        self.clock = loop.time
        self.last = loop.time()
        self._call_at = loop.call_at
        self._handle: asyncio.TimerHandle | None = None
        protocol = response.connection.protocol if response.connection is not None else None
        if protocol is not None and seconds:
            protocol.read_timeout = None  # the watch takes over from the per-read timer
            protocol.start_timeout()  # (which cancels the one running now)
            self._handle = loop.call_at(self.last + seconds, self._check)

    def _check(self) -> None:
        due = self.last + self.seconds
        if self.clock() < due:
            self._handle = self._call_at(due, self._check)
            return
        self._handle = None
        exc = aiohttp.SocketTimeoutError("Timeout on reading data from socket")
        connection = self.response.connection
        if connection is not None and connection.protocol is not None:
            connection.protocol.set_exception(exc)
        self.response.content.set_exception(exc)

    def cancel(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None


class OpenAICompatUpstream:
    """Chat completions over HTTP: OpenRouter, or any server that speaks its dialect."""

    name = "http"

    def __init__(self, settings: Settings) -> None:
        self.headers = {
            "HTTP-Referer": settings.app_url,
            "X-Title": settings.app_title,
            "Content-Type": "application/json",
        }
        self.secrets: tuple[str, ...] = ()
        if settings.upstream_key:
            self.headers["Authorization"] = f"Bearer {settings.upstream_key}"
            self.secrets = (settings.upstream_key,)
        self.url = f"{settings.openrouter_base_url}/chat/completions"
        self.proxy: URL | None = None
        self.proxy_auth: aiohttp.BasicAuth | None = None
        try:
            self.proxy, self.proxy_auth = get_env_proxy_for_url(URL(self.url))
        except LookupError:  # no proxy for this URL
            pass
        self.idle_timeout = settings.read_timeout
        self.connect_timeout = settings.connect_timeout
        self.timeout = aiohttp.ClientTimeout(
            total=None,
            connect=settings.connect_timeout,
            sock_connect=settings.connect_timeout,
            sock_read=max(settings.first_byte_timeout, settings.read_timeout),
        )
        # one session (connection pool) per event loop: the replay deployment runs flows
        # on a loop of its own, and a pooled connection belongs to the loop that opened it
        self._sessions: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, aiohttp.ClientSession
        ] = weakref.WeakKeyDictionary()

    def _session(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        session = self._sessions.get(loop)
        if session is None or session.closed:
            connector = aiohttp.TCPConnector(
                limit=1000, limit_per_host=0, keepalive_timeout=60, ttl_dns_cache=300
            )
            session = aiohttp.ClientSession(
                headers=self.headers,
                timeout=self.timeout,
                connector=connector,
                trust_env=False,
                raise_for_status=False,
                auto_decompress=True,
            )
            self._sessions[loop] = session
        return session

    async def _send(self, body: dict[str, Any]) -> aiohttp.ClientResponse:
        """Send, and wait for the status line; an error status is raised, closed."""
        model = str(body.get("model"))
        try:
            response = await self._session().post(
                self.url, data=orjson.dumps(body), proxy=self.proxy, proxy_auth=self.proxy_auth
            )
        except aiohttp.ConnectionTimeoutError:
            raise timeout_error(model, "connecting", self.connect_timeout) from None
        except TimeoutError:
            raise timeout_error(
                model, "waiting for the first byte", self.timeout.sock_read
            ) from None
        except aiohttp.ClientConnectorError as exc:
            raise connection_error(model, exc, "connecting") from None
        except (aiohttp.ClientError, OSError) as exc:
            raise connection_error(model, exc, "before the answer") from None
        if response.status >= 400:
            try:
                raw = await response.read()
            except (TimeoutError, aiohttp.ClientError, OSError):
                raw = b""
            finally:
                response.release()
            raise upstream_error(
                response.status, raw, model, response.headers.get("retry-after"), self.secrets
            )
        protocol = response.connection.protocol if response.connection is not None else None
        if protocol is not None:  # from now on, the idle limit per read
            protocol.read_timeout = self.idle_timeout
            if not response.content.at_eof():
                protocol.start_timeout()  # the wait running now is an idle wait already
        return response

    async def complete(self, body: dict[str, Any]) -> dict[str, Any]:
        model = str(body.get("model"))
        response = await self._send(body)
        try:
            raw = await response.read()
        except TimeoutError:
            raise timeout_error(
                model, f"no data for {self.idle_timeout:g}s mid-answer", None
            ) from None
        except (aiohttp.ClientError, OSError) as exc:
            raise connection_error(model, exc, "mid-answer") from None
        finally:
            response.release()
        try:
            completion = orjson.loads(raw)
        except orjson.JSONDecodeError:
            kind = response.headers.get("content-type", "no content-type").split(";")[0]
            raise malformed(
                model, f"malformed JSON (a {kind} body: {body_snippet(raw, self.secrets)})"
            ) from None
        if not isinstance(completion, dict):
            raise malformed(model, "JSON that is not a chat completion")
        choices = completion.get("choices")
        if completion.get("error") is not None and not choices:
            raise error_in_body(completion["error"], model, self.secrets)
        if choices and isinstance(choices[0], dict) and not choices[0].get("finish_reason"):
            note_no_finish_reason(model)
        return completion

    async def open_stream(self, body: dict[str, Any]) -> OpenAICompatStream:
        model = str(body.get("model"))
        response = await self._send(body)
        content_type = response.headers.get("content-type", "")
        if content_type and not content_type.lower().startswith("text/event-stream"):
            raise await self._not_a_stream(response, model, content_type)
        return OpenAICompatStream(response, model, self.idle_timeout, self.secrets)

    async def _not_a_stream(
        self, response: aiohttp.ClientResponse, model: str, content_type: str
    ) -> AnthropicError:
        """The error for a 200 whose body is not an event stream: the upstream's own error
        when it is one in JSON (OpenRouter's shape), else a 502 saying what came."""
        raw = b""
        try:
            while len(raw) < _MAX_WRONG_BODY and (
                piece := await response.content.read(_MAX_WRONG_BODY - len(raw))
            ):
                raw += piece
        except (TimeoutError, aiohttp.ClientError, OSError):
            pass
        finally:
            response.close()
        try:
            parsed = orjson.loads(raw)
        except orjson.JSONDecodeError:
            parsed = None
        if isinstance(parsed, dict) and parsed.get("error") is not None:
            return error_in_body(parsed["error"], model, self.secrets)
        kind = content_type.split(";")[0].strip()
        shown = body_snippet(raw, self.secrets)
        return malformed(model, f"a {kind} body where an event stream was asked for ({shown})")

    async def aclose(self) -> None:
        loop = asyncio.get_running_loop()
        sessions, self._sessions = dict(self._sessions), weakref.WeakKeyDictionary()
        for owner, session in sessions.items():
            if session.closed or (owner is not loop and owner.is_closed()):
                continue
            try:
                if owner is loop:
                    await session.close()
                else:  # the replay thread's loop: close it there
                    await asyncio.wait_for(
                        asyncio.wrap_future(
                            asyncio.run_coroutine_threadsafe(session.close(), owner)
                        ),
                        2,
                    )
            except Exception:
                pass
