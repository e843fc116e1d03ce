"""The default backend: one persistent HTTP client to an OpenAI-compatible endpoint.

The client is aiohttp's: its C parser reads a streamed body for ~70 µs of CPU a chunk on
the 2-core machine this project is measured on, where httpx (httpcore, h11 and anyio
per read) took ~170 µs, and a proxy does little else per chunk (`make bench` shows it).
Streams are parsed from raw bytes (`data: ...` lines, `: comments`, `[DONE]`) with orjson.

Timeouts: connecting may take `OAS_CONNECT_TIMEOUT`; the status line may take
`OAS_FIRST_BYTE_TIMEOUT` (a model can think for minutes before it answers); once the
answer is under way, no read may wait longer than `OAS_IDLE_TIMEOUT`: the connection's
read timeout is lowered to the idle one once the headers are in, so the per-chunk path
carries no timer of its own. A proxy comes from the environment (`HTTPS_PROXY`, `NO_PROXY`,
...), looked up once at start: aiohttp's `trust_env` reads the environment and `~/.netrc`
on every request, a tenth of a request's CPU.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
from aiohttp.helpers import get_env_proxy_for_url
from yarl import URL

from src.core.settings import Settings
from src.services.upstream.errors import (
    connection_error,
    error_in_body,
    malformed,
    timeout_error,
    upstream_error,
)


class OpenAICompatStream:
    """An open upstream response whose body is a chunk stream."""

    def __init__(self, response: aiohttp.ClientResponse, model: str, idle_timeout: float,
                 secrets: tuple[str, ...] = ()) -> None:
        self.response = response
        self.model = model
        self.idle_timeout = idle_timeout
        self.secrets = secrets

    async def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        buffer = b""
        done = False
        try:
            async for raw in self.response.content.iter_any():
                buffer += raw
                if b"\n" not in raw:
                    continue
                *lines, buffer = buffer.split(b"\n")
                for line in lines:
                    if not line.startswith(b"data:"):
                        continue  # comments (": OPENROUTER PROCESSING"), event names, blanks
                    data = line[5:].strip()
                    if data == b"[DONE]":
                        done = True
                        return
                    if not data:
                        continue
                    try:
                        chunk = orjson.loads(data)
                    except orjson.JSONDecodeError:
                        raise malformed(self.model, "a malformed stream chunk") from None
                    if "error" in chunk and chunk["error"] is not None:
                        raise error_in_body(chunk["error"], self.model, self.secrets)
                    yield chunk
            done = True  # the body ended without [DONE]: what came is what there is
        except asyncio.TimeoutError:
            raise timeout_error(self.model, f"no data for {self.idle_timeout:g}s mid-answer",
                                None) from None
        except (aiohttp.ClientError, OSError) as exc:
            raise connection_error(self.model, exc, "mid-answer") from None
        finally:
            if done and self.response.content.at_eof():
                self.response.release()  # read to its end: the connection is reused
            else:
                self.response.close()  # cut short: the upstream sees the connection end

    async def aclose(self) -> None:
        self.response.close()


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
        try:
            self.proxy, self.proxy_auth = get_env_proxy_for_url(URL(self.url))
        except LookupError:  # no proxy for this URL
            self.proxy, self.proxy_auth = None, None
        self.idle_timeout = settings.read_timeout
        self.connect_timeout = settings.connect_timeout
        self.timeout = aiohttp.ClientTimeout(
            total=None, connect=settings.connect_timeout,
            sock_connect=settings.connect_timeout,
            sock_read=max(settings.first_byte_timeout, settings.read_timeout),
        )
        # one session (connection pool) per event loop: the replay deployment runs flows
        # on a loop of its own, and a pooled connection belongs to the loop that opened it
        self._sessions: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop,
                                                  aiohttp.ClientSession] = (
            weakref.WeakKeyDictionary())

    def _session(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        session = self._sessions.get(loop)
        if session is None or session.closed:
            connector = aiohttp.TCPConnector(limit=1000, limit_per_host=0,
                                             keepalive_timeout=60, ttl_dns_cache=300)
            session = aiohttp.ClientSession(
                headers=self.headers, timeout=self.timeout, connector=connector,
                trust_env=False, raise_for_status=False, auto_decompress=True)
            self._sessions[loop] = session
        return session

    async def _send(self, body: dict[str, Any]) -> aiohttp.ClientResponse:
        """Send, and wait for the status line; an error status is raised, closed."""
        model = str(body.get("model"))
        try:
            response = await self._session().post(self.url, data=orjson.dumps(body),
                                                  proxy=self.proxy, proxy_auth=self.proxy_auth)
        except aiohttp.ConnectionTimeoutError:
            raise timeout_error(model, "connecting", self.connect_timeout) from None
        except asyncio.TimeoutError:
            raise timeout_error(model, "waiting for the first byte",
                                self.timeout.sock_read) from None
        except aiohttp.ClientConnectorError as exc:
            raise connection_error(model, exc, "connecting") from None
        except (aiohttp.ClientError, OSError) as exc:
            raise connection_error(model, exc, "before the answer") from None
        if response.status >= 400:
            try:
                raw = await response.read()
            except (aiohttp.ClientError, OSError, asyncio.TimeoutError):
                raw = b""
            finally:
                response.release()
            raise upstream_error(response.status, raw, model,
                                 response.headers.get("retry-after"), self.secrets)
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
        except asyncio.TimeoutError:
            raise timeout_error(model, f"no data for {self.idle_timeout:g}s mid-answer",
                                None) from None
        except (aiohttp.ClientError, OSError) as exc:
            raise connection_error(model, exc, "mid-answer") from None
        finally:
            response.release()
        try:
            completion = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise malformed(model, "malformed JSON") from None
        if not isinstance(completion, dict):
            raise malformed(model, "JSON that is not a chat completion")
        if completion.get("error") is not None and not completion.get("choices"):
            raise error_in_body(completion["error"], model, self.secrets)
        return completion

    async def open_stream(self, body: dict[str, Any]) -> OpenAICompatStream:
        response = await self._send(body)
        return OpenAICompatStream(response, str(body.get("model")), self.idle_timeout,
                                  self.secrets)

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
                    await asyncio.wait_for(asyncio.wrap_future(
                        asyncio.run_coroutine_threadsafe(session.close(), owner)), 2)
            except Exception:  # noqa: BLE001 - shutdown goes on
                pass
