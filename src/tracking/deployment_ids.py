"""The ids of the deployments `oas serve` serves, which recorded runs must belong to.

A flow run with a deployment gets the dashboard's Retry button (Prefect reschedules only
runs that have one), and the runner serving that deployment runs it again. The ids are
known once the deployment server has registered the deployments, a second or two after
start; the recorder waits for them (in the background, never on a request's path) before
it creates a run, up to `wait_seconds`, then records without.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Mapping


class DeploymentIds:
    """Deployment ids by flow name, filled in once by the deployment server."""

    def __init__(self, wait_seconds: float = 30.0) -> None:
        self.wait_seconds = wait_seconds
        self._ids: dict[str, str] = {}
        self._known = threading.Event()
        self._since = time.monotonic()

    def register(self, ids: Mapping[str, str]) -> None:
        """The deployments are registered (any thread)."""
        self._ids = dict(ids)
        self._known.set()

    def unavailable(self) -> None:
        """Serving deployments failed: stop waiting, record runs without one."""
        self._known.set()

    def get(self, flow_name: str) -> str | None:
        return self._ids.get(flow_name)

    async def lookup(self, flow_name: str) -> str | None:
        """The id for runs of `flow_name`, waiting while the deployments are registered."""
        while not self._known.is_set() and time.monotonic() - self._since < self.wait_seconds:
            await asyncio.sleep(0.05)
        return self._ids.get(flow_name)
