"""The default backend: one persistent httpx client to an OpenAI-compatible endpoint.

Streams are parsed from raw bytes (`data: ...` lines, `: comments`, `[DONE]`) with
orjson: about 50 µs a chunk less than a general SSE client, which is most of what a
proxy spends per chunk.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson

from src.core.errors import AnthropicError
from src.core.settings import Settings
from src.tasks.upstream.base import upstream_error


class OpenAICompatStream:
    """An open upstream response whose body is a chunk stream."""

    def __init__(self, response: httpx.Response, model: str) -> None:
        self.response = response
        self.model = model

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
                        yield orjson.loads(data)
                    except orjson.JSONDecodeError:
                        raise AnthropicError(
                            "api_error", f"The upstream sent a malformed chunk [upstream model {self.model}]"
                        ) from None
        except httpx.HTTPError as exc:
            raise AnthropicError(
                "api_error",
                f"The upstream connection failed mid-stream: {type(exc).__name__} "
                f"[upstream model {self.model}]",
            ) from None
        finally:
            await self.response.aclose()

    async def aclose(self) -> None:
        await self.response.aclose()


class OpenAICompatUpstream:
    """Chat completions over HTTP: OpenRouter, or any server that speaks its dialect."""

    name = "httpx"

    def __init__(self, settings: Settings, client: httpx.AsyncClient | None = None) -> None:
        headers = {
            "HTTP-Referer": settings.app_url,
            "X-Title": settings.app_title,
            "Content-Type": "application/json",
        }
        if settings.upstream_key:
            headers["Authorization"] = f"Bearer {settings.upstream_key}"
        self.url = f"{settings.openrouter_base_url}/chat/completions"
        self.client = client or httpx.AsyncClient(
            headers=headers,
            timeout=httpx.Timeout(settings.read_timeout, connect=settings.connect_timeout),
            limits=httpx.Limits(max_connections=1000, max_keepalive_connections=100),
        )
        if client is not None:
            self.client.headers.update(headers)

    async def _send(self, body: dict[str, Any], stream: bool) -> httpx.Response:
        model = str(body.get("model"))
        request = self.client.build_request("POST", self.url, content=orjson.dumps(body))
        try:
            response = await self.client.send(request, stream=stream)
        except httpx.TimeoutException:
            raise AnthropicError(
                "timeout_error", f"The upstream did not answer in time [upstream model {model}]",
                upstream_model=model,
            ) from None
        except httpx.HTTPError as exc:
            raise AnthropicError(
                "api_error",
                f"Could not reach the upstream: {type(exc).__name__} [upstream model {model}]",
                status=502,
                upstream_model=model,
            ) from None
        if response.status_code >= 400:
            raw = await response.aread()
            await response.aclose()
            raise upstream_error(response.status_code, raw, model, response.headers.get("retry-after"))
        return response

    async def complete(self, body: dict[str, Any]) -> dict[str, Any]:
        response = await self._send(body, stream=False)
        try:
            return orjson.loads(response.content)
        except orjson.JSONDecodeError:
            raise AnthropicError(
                "api_error", f"The upstream answered with malformed JSON [upstream model {body.get('model')}]"
            ) from None

    async def open_stream(self, body: dict[str, Any]) -> OpenAICompatStream:
        response = await self._send(body, stream=True)
        return OpenAICompatStream(response, str(body.get("model")))

    async def aclose(self) -> None:
        await self.client.aclose()
