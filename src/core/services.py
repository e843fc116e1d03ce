"""The long-lived objects a request needs, built once per process and passed to flows."""

from __future__ import annotations

from dataclasses import dataclass

from src.core.settings import Settings
from src.tasks.upstream.base import Upstream


@dataclass
class Services:
    """Settings and the upstream backend (one persistent client for the process)."""

    settings: Settings
    upstream: Upstream

    @classmethod
    def create(cls, settings: Settings) -> Services:
        if settings.upstream == "litellm":
            from src.tasks.upstream.litellm_backend import LiteLLMUpstream

            return cls(settings, LiteLLMUpstream(settings))
        from src.tasks.upstream.openai_compat import OpenAICompatUpstream

        return cls(settings, OpenAICompatUpstream(settings))

    async def aclose(self) -> None:
        await self.upstream.aclose()
