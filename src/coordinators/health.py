"""What `/health/detailed`, `/tool-metrics` and `/metrics` report about a running server.

The one place that reads the recorder's counters (Prefect) for the HTTP side, so the
routes stay HTTP only.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from src import __version__
from src.coordinators.runtime import Runtime
from src.core.metrics import metrics
from src.local_prefect.prefect_server import local_server_status
from src.sandbox.service import sandbox_status


def _without_credentials(url: str | None) -> str | None:
    """A URL as safe to show: any `user:password@` taken out."""
    if not url:
        return url
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))


def model_mapping(runtime: Runtime) -> dict[str, Any]:
    """Which upstream model each name the client may send goes to."""
    s = runtime.settings
    return {
        "big": s.big_model,
        "small": s.small_model,
        "claude-*haiku*": s.small_model,
        "claude-*sonnet*": s.big_model,
        "claude-*opus*": s.big_model,
        "provider/model": "passed through unchanged",
    }


def mcp_server_states(runtime: Runtime) -> list[dict[str, Any]]:
    """The managed MCP servers declared in OAS_CONFIG and their states (none: empty)."""
    return runtime.services.mcp.states() if runtime.services.mcp is not None else []


async def detailed_health(runtime: Runtime) -> dict[str, Any]:
    """Version, uptime, upstream reachability, Prefect tracking, model mapping, MCP."""
    upstream = await runtime.catalog.probe()
    stats = runtime.recorder.stats.as_dict()
    tracking = runtime.recorder.api_url is not None
    prefect_ok = not tracking or bool(stats.get("prefect_up"))
    return {
        "status": "ok" if upstream.reachable and not upstream.error and prefect_ok else "degraded",
        "version": __version__,
        "started_at": datetime.fromtimestamp(runtime.started, UTC).isoformat(),
        "uptime_seconds": round(time.time() - runtime.started, 1),
        "upstream": {
            "base_url": _without_credentials(runtime.settings.openrouter_base_url),
            "backend": runtime.settings.upstream,
            **upstream.as_dict(),
        },
        "prefect": {
            "tracking": tracking,
            "api_url": _without_credentials(runtime.recorder.api_url),
            **stats,
            # the server `oas serve` started and restarts when it dies (None: not ours)
            "local_server": local_server_status(),
        },
        "model_mapping": model_mapping(runtime),
        "mcp_servers": mcp_server_states(runtime),
        "code_execution": sandbox_status(runtime.settings),
    }


def tool_metrics() -> dict[str, Any]:
    """Per tool and per model counters since the process started."""
    return {
        "since": datetime.fromtimestamp(metrics.started, UTC).isoformat(),
        "uptime_seconds": round(time.time() - metrics.started, 1),
        **metrics.snapshot(),
    }


def prometheus_text(runtime: Runtime) -> bytes:
    """`/metrics`: the process metrics plus this server's tracking counters."""
    return metrics.prometheus_text(tracking=runtime.recorder.stats.as_dict())
