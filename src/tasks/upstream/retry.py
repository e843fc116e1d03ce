"""Retries and fallbacks: which model to try next after a failure, and when.

Only failures that did nothing upstream are tried again (`AnthropicError.retryable`:
connect errors, 429, 502/503/529, no first byte in time), and only before any byte has
reached the client: the flow runs these attempts inside `call-upstream`, before the
answer starts. Each model is retried up to `retries` times with exponential backoff and
jitter, waiting what the upstream's `retry-after` asks for when it says; then the next
fallback model is tried at once. No attempt starts once the budget of seconds is spent.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

import structlog

from src.core.errors import AnthropicError
from src.core.settings import Settings

T = TypeVar("T")

log = structlog.get_logger("oas.upstream")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How hard to try: retries per model, seconds for all of them, backoff shape."""

    retries: int = 2
    budget: float = 30.0
    base_delay: float = 0.5
    max_delay: float = 8.0

    @classmethod
    def from_settings(cls, settings: Settings) -> RetryPolicy:
        return cls(
            settings.retries,
            settings.retry_budget,
            settings.retry_base_delay,
            settings.retry_max_delay,
        )

    def backoff(self, retry: int, rng: Callable[[], float] = random.random) -> float:
        """Wait before retry number `retry` (0-based): half to all of base * 2^retry, capped."""
        cap = min(self.max_delay, self.base_delay * (2**retry))
        return cap / 2 + rng() * cap / 2


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a `retry-after` value (seconds or an HTTP date), if any."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, when - (time.time() if now is None else now))


@dataclass(slots=True)
class Attempt:
    """One try of one model, for the dashboard."""

    model: str
    outcome: str  # "ok" or the Anthropic error type
    status: int | None = None
    waited: float = 0.0

    def describe(self) -> str:
        text = f"{self.model}: {self.outcome}"
        if self.status:
            text += f" ({self.status})"
        if self.waited:
            text += f", then waited {self.waited:.2f}s"
        return text


@dataclass
class Attempts:
    """The attempts of one request over `models` (the primary first), under `policy`."""

    models: tuple[str, ...]
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    clock: Callable[[], float] = time.monotonic
    rng: Callable[[], float] = random.random
    sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep
    tried: list[Attempt] = field(default_factory=list)
    answered_by: str | None = None

    async def run(self, call: Callable[[str], Awaitable[T]]) -> T:
        """`call(model)` for each attempt until one succeeds; else the last error, raised
        with the whole story in its message."""
        started = self.clock()
        index, retry = 0, 0
        while True:
            model = self.models[index]
            number = len(self.tried) + 1
            try:
                result = await call(model)
            except AnthropicError as exc:
                attempt = Attempt(model, exc.error_type, exc.status)
                self.tried.append(attempt)
                log.warning(
                    "upstream attempt failed",
                    model=model,
                    attempt=number,
                    error_type=exc.error_type,
                    status=exc.status,
                    error=exc.message,
                )
                step = self._next(exc, index, retry, self.clock() - started)
                if step is None:
                    raise self._final(exc) from None
                if step[0] != index:
                    log.info(
                        "falling back to the next model", failed=model, model=self.models[step[0]]
                    )
                else:
                    log.info(
                        "retrying upstream",
                        model=model,
                        retry=step[1],
                        wait_seconds=round(step[2], 2),
                    )
                index, retry, delay = step
                if delay > 0:
                    attempt.waited = delay
                    await self.sleep(delay)
                continue
            self.tried.append(Attempt(model, "ok"))
            if number > 1:  # a first attempt that answers is the quiet, common case
                log.info("upstream answered", model=model, attempt=number)
            self.answered_by = model
            return result

    def _next(
        self, exc: AnthropicError, index: int, retry: int, elapsed: float
    ) -> tuple[int, int, float] | None:
        """(model index, retry number, seconds to wait) of the next attempt, or None."""
        if not exc.retryable:
            return None
        remaining = self.policy.budget - elapsed
        if retry < self.policy.retries:
            asked = parse_retry_after(exc.retry_after)
            delay = asked if asked is not None else self.policy.backoff(retry, self.rng)
            if delay < remaining:
                return index, retry + 1, delay
        if index + 1 < len(self.models) and remaining > 0:
            return index + 1, 0, 0.0
        return None

    def _final(self, exc: AnthropicError) -> AnthropicError:
        if len(self.tried) == 1:
            return exc
        story = "; ".join(a.describe() for a in self.tried)
        final = AnthropicError(
            exc.error_type,
            f"{exc.message} (after {len(self.tried)} attempts: {story})",
            status=exc.status,
            retry_after=exc.retry_after,
            upstream_model=exc.upstream_model,
        )
        return final

    def summary(self) -> dict[str, Any]:
        """Fields for the run's artifact: every attempt, and the fallbacks that were tried."""
        fallbacks = [m for m in dict.fromkeys(a.model for a in self.tried) if m != self.models[0]]
        return {"attempts": [a.describe() for a in self.tried], "fallbacks": fallbacks}

    def tags(self) -> list[str]:
        """Dashboard tags: `retried`, and `fallback:<model>` when a fallback answered."""
        tags = ["retried"] if len(self.tried) > 1 else []
        if self.answered_by and self.answered_by != self.models[0]:
            tags.append(f"fallback:{self.answered_by[:80]}")
        return tags
