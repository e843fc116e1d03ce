"""Writes that Prefect takes for many runs in one call: task-run events, log lines.

The recorder puts each finished run's events and log lines here and sends what has
gathered every 250 ms, so their cost per run is a share of one call, not a call each.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import structlog

from src.tracking.prefect_api import ApiResponse, PrefectDown

log = structlog.get_logger("oas.recorder")

MAX_BATCH = 2000


class Batch:
    """Items waiting for one `POST url` (a JSON list), at most MAX_BATCH per call."""

    def __init__(self, url: str, what: str, on_sent: Callable[[int], None]) -> None:
        self.url = url
        self.what = what
        self.on_sent = on_sent  # count what went out
        self.items: list[dict[str, Any]] = []

    def __bool__(self) -> bool:
        return bool(self.items)

    def extend(self, items: list[dict[str, Any]]) -> None:
        self.items.extend(items)

    async def send(self, call: Callable[[str, str, Any], Awaitable[ApiResponse]]) -> None:
        batch, self.items = self.items[:MAX_BATCH], self.items[MAX_BATCH:]
        if not batch:
            return
        try:
            await call("POST", self.url, batch)
            self.on_sent(len(batch))
        except Exception as exc:
            if not isinstance(exc, PrefectDown):
                log.warning(f"could not send {self.what}", error=str(exc), count=len(batch))
