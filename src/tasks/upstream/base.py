"""What a model backend must do: answer a chat completion whole, or as a stream of chunks."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Protocol, runtime_checkable

import orjson

from src.core.errors import AnthropicError, error_type_for_status


@runtime_checkable
class UpstreamStream(Protocol):
    """An accepted streaming completion: iterate chunks, or close it early."""

    def __aiter__(self) -> AsyncIterator[dict[str, Any]]: ...

    async def aclose(self) -> None: ...


@runtime_checkable
class Upstream(Protocol):
    """A chat completions backend (OpenAI's request and chunk shapes, OpenRouter's extras)."""

    name: str

    async def complete(self, body: dict[str, Any]) -> dict[str, Any]: ...

    async def open_stream(self, body: dict[str, Any]) -> UpstreamStream: ...

    async def aclose(self) -> None: ...


def upstream_error(status: int, raw: bytes, model: str, retry_after: str | None = None) -> AnthropicError:
    """An upstream HTTP error as the Anthropic error a client expects.

    OpenRouter's body is `{"error": {"code", "message", "metadata"}}`; the provider's raw
    message and moderation reasons in `metadata` are kept, since they say what to fix.
    """
    message = ""
    try:
        body = orjson.loads(raw) if raw else {}
    except orjson.JSONDecodeError:
        body = {}
        message = raw[:500].decode("utf-8", "replace").strip()
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        message = str(error.get("message") or message)
        metadata = error.get("metadata")
        if isinstance(metadata, dict):
            extra = metadata.get("raw") or metadata.get("reasons") or metadata.get("provider_name")
            if extra:
                message = f"{message} ({_short(extra)})"
    elif isinstance(error, str):
        message = error
    if not message:
        message = f"upstream answered HTTP {status}"
    if status == 401:
        # Clients (Claude Code: "Please run /login") take a 401 for their own key; say whose.
        message = f"The upstream rejected oas's API key (check OPENROUTER_API_KEY): {message}"
    return AnthropicError(
        error_type_for_status(status),
        f"{message} [upstream model {model}]",
        status=_client_status(status),
        retry_after=retry_after,
        upstream_model=model,
    )


def _client_status(status: int) -> int:
    # Statuses Anthropic clients know; anything else becomes the nearest one.
    if status in (400, 401, 402, 403, 404, 413, 429, 500, 504, 529):
        return status
    if status == 503:
        return 529
    if status == 408:
        return 504
    if 400 <= status < 500:
        return 400
    return 500 if status != 502 else 502


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else orjson.dumps(value).decode()
    return text if len(text) <= 500 else text[:500] + "..."
