"""The long-lived things a request uses, built once per process and closed at shutdown.

`src/services` holds what keeps state across requests: the upstream backends with their
connection pools behind the concurrency guard and limits (`upstream/`), the managed MCP
servers' supervisor (`managed_mcp.py`), the token counter (`tokenizer.py`), the spend
ledger behind budgets (`spend/`), the MCP client and the network guard they share.
`Services` is the one place that builds, starts and closes them. Steps (`src/tasks`)
receive them as arguments; nothing here imports a step.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from src.core.settings import Settings
from src.services.managed_mcp import ManagedMcpServers
from src.services.managed_mcp import install as install_managed_mcp
from src.services.spend.ledger import open_ledger
from src.services.spend.service import SpendService
from src.services.upstream.base import Upstream


@dataclass
class Services:
    """Settings, the upstream backend (one persistent client for the process) behind the
    process-wide guards (concurrency slots, the first-byte deadline), the managed MCP
    servers and the token counter's warm-up."""

    settings: Settings
    upstream: Upstream
    mcp: ManagedMcpServers | None = None
    tokenizers: threading.Thread | None = None  # the warm-up of the token counter
    spend: SpendService | None = None  # what each client spent: the budgets' ledger

    @classmethod
    def create(cls, settings: Settings) -> Services:
        """Build everything (a broken `mcp_servers` section stops here, before serving)."""
        from src.services.upstream.guard import GuardedUpstream
        from src.services.upstream.limits import ConcurrencyLimiter

        backend: Upstream
        if settings.upstream == "litellm":
            from src.services.upstream.litellm_backend import LiteLLMUpstream

            backend = LiteLLMUpstream(settings)
        else:
            from src.services.upstream.openai_compat import OpenAICompatUpstream

            backend = OpenAICompatUpstream(settings)
        limiter = ConcurrencyLimiter(
            settings.max_concurrency, settings.max_queue, settings.queue_timeout
        )
        mcp = ManagedMcpServers.from_settings(settings)
        spend = SpendService(open_ledger(settings.ledger_url, settings.data_dir))
        return cls(
            settings,
            GuardedUpstream(backend, limiter, settings.first_byte_timeout),
            mcp=mcp if mcp else None,
            spend=spend,
        )

    def start(self) -> None:
        """Start background work (inside the running event loop, at app start-up)."""
        from src.services.tokenizer import warm_up_in_background

        # the first token count must not wait for LiteLLM's import (once per process:
        # `oas serve` starts this earlier still, beside the Prefect server)
        self.tokenizers = warm_up_in_background(self.settings.big_model, self.settings.small_model)
        if self.spend is not None:
            self.spend.start()
        if self.mcp is not None:
            install_managed_mcp(self.mcp)
            self.mcp.start()

    async def aclose(self) -> None:
        if self.spend is not None:
            self.spend.stop()
        if self.mcp is not None:
            install_managed_mcp(None)
            await self.mcp.aclose()
        await self.upstream.aclose()
