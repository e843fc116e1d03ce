"""call-upstream: the one step that talks to the model. One task run per attempt, so the
dashboard shows each try (a retry, a fallback model) with its own state and message."""

from __future__ import annotations

from typing import Any

from src.services.upstream.base import Upstream, UpstreamStream
from src.tracking import step


@step("call-upstream")
async def call_upstream(upstream: Upstream, body: dict[str, Any]) -> dict[str, Any]:
    """Task: a whole (non-stream) completion from `body["model"]`."""
    return await upstream.complete(body)


@step("call-upstream")
async def open_upstream_stream(upstream: Upstream, body: dict[str, Any]) -> UpstreamStream:
    """Task: send the request and wait until the answer has started (its first chunk)."""
    return await upstream.open_stream(body)
