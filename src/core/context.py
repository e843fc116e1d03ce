"""What the HTTP layer knows about a request that later steps want to see."""

from __future__ import annotations

import time
from dataclasses import dataclass, field


@dataclass(slots=True)
class RequestContext:
    """Request id, Claude Code session id and the client headers that matter downstream."""

    request_id: str
    session_id: str | None = None
    anthropic_beta: str | None = None
    anthropic_version: str | None = None
    user_agent: str | None = None
    mcp_opt_in: str | None = None  # `x-oas-mcp`: managed MCP servers the request asks for
    received: float = field(default_factory=time.time)

    def as_payload_context(self) -> dict[str, str]:
        """The parts worth keeping with a stored request for replay (no credentials)."""
        out = {"session_id": self.session_id, "anthropic_beta": self.anthropic_beta,
               "anthropic_version": self.anthropic_version, "user_agent": self.user_agent}
        return {k: v for k, v in out.items() if v}
