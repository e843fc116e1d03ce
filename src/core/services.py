"""The long-lived objects a request needs, built once per process and passed to flows."""

from __future__ import annotations

from dataclasses import dataclass

from src.core.settings import Settings
from src.tasks.upstream.base import Upstream


@dataclass
class Services:
    """Settings and the upstream backend (one persistent client for the process), behind
    the process-wide guards: concurrency slots and the first-byte deadline."""

    settings: Settings
    upstream: Upstream

    @classmethod
    def create(cls, settings: Settings) -> Services:
        from src.tasks.upstream.guard import GuardedUpstream
        from src.tasks.upstream.limits import ConcurrencyLimiter

        backend: Upstream
        if settings.upstream == "litellm":
            from src.tasks.upstream.litellm_backend import LiteLLMUpstream

            backend = LiteLLMUpstream(settings)
        else:
            from src.tasks.upstream.openai_compat import OpenAICompatUpstream

            backend = OpenAICompatUpstream(settings)
        limiter = ConcurrencyLimiter(settings.max_concurrency, settings.max_queue,
                                     settings.queue_timeout)
        return cls(settings, GuardedUpstream(backend, limiter, settings.first_byte_timeout))

    async def aclose(self) -> None:
        await self.upstream.aclose()
