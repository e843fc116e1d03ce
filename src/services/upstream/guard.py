"""Any backend behind the process's guards: a concurrency slot, a first-byte deadline, and
streams that count as open only once their first real chunk has arrived.

Why wait for the first chunk: OpenRouter accepts a stream (200) before a provider has
produced anything, and a provider that fails then says so in the stream's first chunk.
Until that chunk nothing has been sent to the client, so such a failure can still be
retried or handed to a fallback model; after it, it cannot.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

from src.services.upstream.base import Upstream, UpstreamStream, chunk_batches
from src.services.upstream.errors import timeout_error
from src.services.upstream.limits import ConcurrencyLimiter

# Chunks without content (role announcements, empty deltas) kept back at most while
# waiting for the first real one; past this the stream counts as started anyway.
_MAX_HEAD = 64


def _meaningful(chunk: dict[str, Any]) -> bool:
    """Does this chunk carry something the client would see (or the end, or usage)?"""
    if chunk.get("usage"):
        return True
    choices = chunk.get("choices")
    if not choices:
        return False
    choice = choices[0]
    if choice.get("finish_reason"):
        return True
    delta = choice.get("delta") or {}
    return bool(
        delta.get("content")
        or delta.get("reasoning")
        or delta.get("tool_calls")
        or delta.get("reasoning_details")
        or delta.get("refusal")
    )


class PrimedStream:
    """An upstream stream with its first chunks in hand; iterating replays them first."""

    def __init__(
        self,
        stream: UpstreamStream,
        rest: AsyncIterator[list[dict[str, Any]]],
        head: list[dict[str, Any]],
        release: Callable[[], None],
    ) -> None:
        self._stream = stream
        self._rest = rest
        self.head = head
        self._release = release

    @classmethod
    async def prime(cls, stream: UpstreamStream, release: Callable[[], None]) -> PrimedStream:
        """Read until the first meaningful chunk (or the end); on failure close and raise."""
        rest = chunk_batches(stream)
        head: list[dict[str, Any]] = []
        try:
            while len(head) < _MAX_HEAD:
                try:
                    batch = await rest.__anext__()
                except StopAsyncIteration:
                    break
                head += batch  # the whole read: its chunks go to the client together
                if any(map(_meaningful, batch)):
                    break
        except BaseException:
            await _close(rest, stream)
            raise
        return cls(stream, rest, head, release)

    async def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        async for batch in self.batches():
            for chunk in batch:
                yield chunk

    async def batches(self) -> AsyncIterator[list[dict[str, Any]]]:
        """The chunks in hand as one list, then one list per network read."""
        head, self.head = self.head, []
        if head:
            yield head
        async for batch in self._rest:
            yield batch
        self._release()

    async def aclose(self) -> None:
        """Close the upstream response (the upstream sees the connection end at once)."""
        try:
            await _close(self._rest, self._stream)
        finally:
            self._release()


async def _close(rest: AsyncIterator[Any], stream: UpstreamStream) -> None:
    close = getattr(rest, "aclose", None)
    try:
        if close is not None:
            await close()
    finally:
        await stream.aclose()


class GuardedUpstream:
    """An `Upstream` that adds the guards to `backend` (see the module docstring)."""

    def __init__(
        self, backend: Upstream, limiter: ConcurrencyLimiter, first_byte_timeout: float
    ) -> None:
        self.backend = backend
        self.name = backend.name
        self.limiter = limiter
        self.first_byte_timeout = first_byte_timeout

    async def complete(self, body: dict[str, Any]) -> dict[str, Any]:
        release = await self.limiter.acquire()
        try:
            async with asyncio.timeout(self.first_byte_timeout):
                return await self.backend.complete(body)
        except TimeoutError:
            raise timeout_error(
                str(body.get("model")), "waiting for the answer", self.first_byte_timeout
            ) from None
        finally:
            release()

    async def open_stream(self, body: dict[str, Any]) -> PrimedStream:
        release = await self.limiter.acquire()
        try:
            async with asyncio.timeout(self.first_byte_timeout):
                stream = await self.backend.open_stream(body)
                return await PrimedStream.prime(stream, release)
        except TimeoutError:
            release()
            raise timeout_error(
                str(body.get("model")), "waiting for the first chunk", self.first_byte_timeout
            ) from None
        except BaseException:
            release()
            raise

    async def aclose(self) -> None:
        await self.backend.aclose()
