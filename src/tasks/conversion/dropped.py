"""What a request carries that is not sent upstream: one place, logged once per kind.

Claude Code and the SDK add request fields every month. A proxy that refuses them breaks
its users, one that forwards them breaks the upstream, so each is either converted (in
`request.py` and its helpers) or named here and dropped on purpose, with one log line the
first time it is seen in this process.
"""

from __future__ import annotations

from collections.abc import Iterable

import structlog

log = structlog.get_logger("oas.conversion")

# Top-level request fields that have no OpenRouter equivalent, and why.
DROPPED_FIELDS: dict[str, str] = {
    "service_tier": "Anthropic's capacity tiers do not apply upstream",
    "context_management": "Anthropic-side context editing is not available upstream",
    "container": "code execution containers are not available upstream",
    "mcp_servers": "the MCP connector is not offered upstream",
    "speed": "Anthropic's fast mode does not apply upstream",
    "inference_geo": "Anthropic's inference region does not apply upstream",
    "diagnostics": "Anthropic's request diagnostics do not apply upstream",
    "user_profile_id": "Anthropic account data does not apply upstream",
    "workspace_id": "Anthropic account data does not apply upstream",
    "betas": "beta flags are Anthropic-specific",
}

_seen: set[str] = set()


def note_dropped(what: str, reason: str) -> None:
    """Log, once per process, a part of the request that has no upstream equivalent."""
    if what not in _seen:
        _seen.add(what)
        log.info("request part not sent upstream", part=what, reason=reason)


def note_unknown_fields(names: Iterable[str]) -> None:
    """Top-level fields this server does not convert: tolerated, named once in the log."""
    for name in names:
        note_dropped(f"field {name}", DROPPED_FIELDS.get(name, "not known to this server"))
