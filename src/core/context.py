"""What the HTTP layer knows about a request that later steps want to see."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Any

import orjson

# Claude Code before 2.1 sends no session header; its `metadata.user_id` ends in the
# session id (`user_<hash>_account__session_<uuid>`); 2.1 sends a JSON string instead.
_SESSION_IN_USER_ID = re.compile(r"_session_([0-9A-Za-z-]{8,64})$")


@dataclass(slots=True)
class RequestContext:
    """Request id, Claude Code session id and the client headers that matter downstream."""

    request_id: str
    session_id: str | None = None
    anthropic_beta: str | None = None
    anthropic_version: str | None = None
    user_agent: str | None = None
    mcp_opt_in: str | None = None  # `x-oas-mcp`: managed MCP servers the request asks for
    client: str | None = None  # the named client whose key the request carries
    received: float = field(default_factory=time.time)

    def as_payload_context(self) -> dict[str, str]:
        """The parts worth keeping with a stored request for replay (no credentials)."""
        out = {
            "session_id": self.session_id,
            "anthropic_beta": self.anthropic_beta,
            "anthropic_version": self.anthropic_version,
            "user_agent": self.user_agent,
        }
        return {k: v for k, v in out.items() if v}


def session_from_metadata(body: Any) -> str | None:
    """The Claude Code session id carried in a request's `metadata.user_id`, if any.

    So that every release's requests group by session in the dashboard, not only those
    of releases that send `X-Claude-Code-Session-Id`.
    """
    metadata = body.get("metadata") if isinstance(body, dict) else None
    user_id = metadata.get("user_id") if isinstance(metadata, dict) else None
    if not isinstance(user_id, str) or len(user_id) > 1000:
        return None
    if user_id.startswith("{"):
        try:
            value = orjson.loads(user_id)
        except orjson.JSONDecodeError:
            return None
        session = value.get("session_id") if isinstance(value, dict) else None
        return session if isinstance(session, str) and 0 < len(session) <= 64 else None
    found = _SESSION_IN_USER_ID.search(user_id)
    return found.group(1) if found else None
