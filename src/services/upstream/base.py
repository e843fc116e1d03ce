"""What a model backend must do: answer a chat completion whole, or as a stream of chunks."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Protocol, runtime_checkable

from src.services.upstream.errors import upstream_error

__all__ = ["Upstream", "UpstreamStream", "chunk_batches", "upstream_error"]


@runtime_checkable
class UpstreamStream(Protocol):
    """An accepted streaming completion: iterate chunks, or close it early."""

    def __aiter__(self) -> AsyncIterator[dict[str, Any]]: ...

    async def aclose(self) -> None: ...


@runtime_checkable
class Upstream(Protocol):
    """A chat completions backend (OpenAI's request and chunk shapes, OpenRouter's extras).

    Failures are raised as `AnthropicError`s naming the model, `retryable` when nothing
    was done upstream (see `src.services.upstream.errors`).
    """

    name: str

    async def complete(self, body: dict[str, Any]) -> dict[str, Any]: ...

    async def open_stream(self, body: dict[str, Any]) -> UpstreamStream: ...

    async def aclose(self) -> None: ...


def chunk_batches(stream: Any) -> AsyncIterator[list[dict[str, Any]]]:
    """A stream's chunks as lists, one per network read when the stream can say (its
    `batches()`), else one list per chunk: consumers handle both alike."""
    batches = getattr(stream, "batches", None)
    return batches() if batches is not None else _singles(stream)


async def _singles(stream: Any) -> AsyncIterator[list[dict[str, Any]]]:
    async for chunk in stream:
        yield [chunk]
