"""The uvicorn configuration `oas serve` runs with, and the tests too: one place for both.

Connections are bounded (see `connections.py`): the cap is the lower of
`OAS_MAX_CONNECTIONS` and what the open-files limit leaves room for, since every client
connection may need an upstream connection beside it, and the process needs files too.
"""

from __future__ import annotations

import resource
from typing import Any

import structlog

from src.api.connections import ConnectionLimits, GuardedConfig
from src.core.settings import Settings

log = structlog.get_logger("oas.http")

#: open files kept for everything but client connections (database, logs, payloads, ...)
_RESERVED_FILES = 256


def raise_open_files_limit() -> int:
    """Raise this process's soft limit of open files to its hard limit; the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft != resource.RLIM_INFINITY and soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError) as exc:
            log.warning(
                "could not raise the open files limit", soft=soft, hard=hard, error=str(exc)
            )
    return soft


def connection_limits(settings: Settings) -> ConnectionLimits:
    """The limits from the settings, the cap lowered to what the open-files limit allows."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    cap = settings.max_connections
    if soft != resource.RLIM_INFINITY:
        room = max(16, (soft - _RESERVED_FILES) // 2)  # a client and its upstream each
        if room < cap:
            log.warning(
                "fewer connections than OAS_MAX_CONNECTIONS fit the open files limit",
                max_connections=cap,
                allowed=room,
                open_files_limit=soft,
            )
            cap = room
    return ConnectionLimits(
        header_timeout=settings.header_timeout,
        body_timeout=settings.body_timeout,
        max_connections=cap,
    )


def server_config(
    app: Any, settings: Settings, host: str, port: int, **options: Any
) -> GuardedConfig:
    """uvicorn's config for `app`: uvloop, httptools with the connection guard, the
    keep-alive and shutdown timeouts of `settings`, oas's own logging."""
    return GuardedConfig(
        app,
        limits=connection_limits(settings),
        host=host,
        port=port,
        loop="uvloop",
        log_config=None,
        access_log=False,
        timeout_keep_alive=settings.keep_alive_timeout,
        timeout_graceful_shutdown=settings.shutdown_timeout,
        **options,
    )
