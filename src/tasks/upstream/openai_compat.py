"""The default backend: one persistent httpx client to an OpenAI-compatible endpoint.

Streams are parsed from raw bytes (`data: ...` lines, `: comments`, `[DONE]`) with
orjson: about 50 µs a chunk less than a general SSE client, which is most of what a
proxy spends per chunk.

Timeouts: connecting may take `OAS_CONNECT_TIMEOUT`; the status line may take
`OAS_FIRST_BYTE_TIMEOUT` (a model can think for minutes before it answers); once the
answer is under way, no read may wait longer than `OAS_IDLE_TIMEOUT`. httpx reads a
response body's read timeout when the body is first read, so the request goes out with
the first-byte limit and the limit is lowered to the idle one once the headers are in:
the per-chunk path carries no timer of its own.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson

from src.core.settings import Settings
from src.tasks.upstream.errors import (
    connection_error,
    error_in_body,
    malformed,
    timeout_error,
    upstream_error,
)


class OpenAICompatStream:
    """An open upstream response whose body is a chunk stream."""

    def __init__(self, response: httpx.Response, model: str, idle_timeout: float,
                 secrets: tuple[str, ...] = ()) -> None:
        self.response = response
        self.model = model
        self.idle_timeout = idle_timeout
        self.secrets = secrets

    async def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        buffer = b""
        try:
            async for raw in self.response.aiter_raw():
                buffer += raw
                if b"\n" not in raw:
                    continue
                *lines, buffer = buffer.split(b"\n")
                for line in lines:
                    if not line.startswith(b"data:"):
                        continue  # comments (": OPENROUTER PROCESSING"), event names, blanks
                    data = line[5:].strip()
                    if data == b"[DONE]":
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
        except httpx.TimeoutException:
            raise timeout_error(self.model, f"no data for {self.idle_timeout:g}s mid-answer",
                                None) from None
        except httpx.HTTPError as exc:
            raise connection_error(self.model, exc, "mid-answer") from None
        finally:
            await self.response.aclose()

    async def aclose(self) -> None:
        await self.response.aclose()


def _limit_reads(response: httpx.Response, seconds: float) -> None:
    """From now on, no read of this response may wait longer than `seconds`."""
    timeouts = response.request.extensions.get("timeout")
    if isinstance(timeouts, dict):
        timeouts["read"] = seconds


class OpenAICompatUpstream:
    """Chat completions over HTTP: OpenRouter, or any server that speaks its dialect."""

    name = "httpx"

    def __init__(self, settings: Settings, client: httpx.AsyncClient | None = None) -> None:
        headers = {
            "HTTP-Referer": settings.app_url,
            "X-Title": settings.app_title,
            "Content-Type": "application/json",
        }
        self.secrets: tuple[str, ...] = ()
        if settings.upstream_key:
            headers["Authorization"] = f"Bearer {settings.upstream_key}"
            self.secrets = (settings.upstream_key,)
        self.url = f"{settings.openrouter_base_url}/chat/completions"
        self.idle_timeout = settings.read_timeout
        self.first_byte_timeout = settings.first_byte_timeout
        self.timeout = httpx.Timeout(
            connect=settings.connect_timeout,
            read=max(settings.first_byte_timeout, settings.read_timeout),
            write=settings.read_timeout,
            pool=settings.connect_timeout,
        )
        self.client = client or httpx.AsyncClient(
            headers=headers,
            timeout=self.timeout,
            limits=httpx.Limits(max_connections=1000, max_keepalive_connections=100),
        )
        if client is not None:
            self.client.headers.update(headers)

    async def _send(self, body: dict[str, Any]) -> httpx.Response:
        """Send, and wait for the status line; an error status is raised, closed."""
        model = str(body.get("model"))
        request = self.client.build_request("POST", self.url, content=orjson.dumps(body),
                                            timeout=self.timeout)
        try:
            response = await self.client.send(request, stream=True)
        except httpx.TimeoutException as exc:
            what = "connecting" if isinstance(exc, (httpx.ConnectTimeout, httpx.PoolTimeout)) \
                else "waiting for the first byte"
            limit = self.timeout.connect if what == "connecting" else self.timeout.read
            raise timeout_error(model, what, limit) from None
        except httpx.HTTPError as exc:
            raise connection_error(model, exc, "before the answer") from None
        if response.status_code >= 400:
            try:
                raw = await response.aread()
            except httpx.HTTPError:
                raw = b""
            finally:
                await response.aclose()
            raise upstream_error(response.status_code, raw, model,
                                 response.headers.get("retry-after"), self.secrets)
        _limit_reads(response, self.idle_timeout)
        return response

    async def complete(self, body: dict[str, Any]) -> dict[str, Any]:
        model = str(body.get("model"))
        response = await self._send(body)
        try:
            raw = await response.aread()
        except httpx.TimeoutException:
            raise timeout_error(model, f"no data for {self.idle_timeout:g}s mid-answer",
                                None) from None
        except httpx.HTTPError as exc:
            raise connection_error(model, exc, "mid-answer") from None
        finally:
            await response.aclose()
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
        await self.client.aclose()
