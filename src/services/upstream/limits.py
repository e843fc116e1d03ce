"""How many upstream requests may run at once, and how many may wait for a turn.

A request takes a slot for its whole answer (a stream holds it until it ends). When all
slots are taken it waits in a bounded first-come queue; when the queue is full, or the
wait runs past its bound, the client gets Anthropic's 529 `overloaded_error` with a
`retry-after`, at once, instead of a connection that hangs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from src.core.errors import AnthropicError, overloaded


@dataclass
class LimiterStats:
    active: int = 0
    waiting: int = 0
    rejected: int = 0
    timed_out: int = 0


class ConcurrencyLimiter:
    """At most `limit` slots (0: unlimited), `max_queue` waiters, `queue_timeout` seconds."""

    def __init__(self, limit: int, max_queue: int, queue_timeout: float) -> None:
        self.limit = limit
        self.max_queue = max_queue
        self.queue_timeout = queue_timeout
        self.stats = LimiterStats()
        self._semaphore: asyncio.Semaphore | None = None

    def _sem(self) -> asyncio.Semaphore:
        if self._semaphore is None:
            self._semaphore = asyncio.Semaphore(self.limit)
        return self._semaphore

    async def acquire(self) -> Callable[[], None]:
        """Wait for a slot; returns the function that gives it back (safe to call twice)."""
        if self.limit <= 0:
            self.stats.active += 1
            return self._releaser(None)
        sem = self._sem()
        if sem.locked():
            if self.stats.waiting >= self.max_queue:
                self.stats.rejected += 1
                raise self._full(
                    f"all {self.limit} upstream slots are busy and "
                    f"{self.stats.waiting} requests are already waiting"
                )
            self.stats.waiting += 1
            try:
                async with asyncio.timeout(self.queue_timeout):
                    await sem.acquire()
            except TimeoutError:
                self.stats.timed_out += 1
                raise self._full(
                    f"no upstream slot came free within {self.queue_timeout:g}s"
                ) from None
            finally:
                self.stats.waiting -= 1
        else:
            await sem.acquire()
        self.stats.active += 1
        return self._releaser(sem)

    def _releaser(self, sem: asyncio.Semaphore | None) -> Callable[[], None]:
        released = False

        def release() -> None:
            nonlocal released
            if released:
                return
            released = True
            self.stats.active -= 1
            if sem is not None:
                sem.release()

        return release

    @staticmethod
    def _full(why: str) -> AnthropicError:
        return overloaded(
            f"This server is at its limit of concurrent requests: {why}. "
            "Retry shortly (OAS_MAX_CONCURRENCY, OAS_MAX_QUEUE)."
        )
