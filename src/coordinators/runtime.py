"""The process-wide state of a running server: settings, services and the recorder."""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass, field

import structlog

from src.coordinators.models import ModelCatalog
from src.core.services import Services
from src.sandbox.service import sandbox_status
from src.core.settings import Settings
from src.coordinators.deployments import DeploymentServer
from src.tasks.server_tools.managed_mcp import ManagedMcpServers
from src.tasks.server_tools.managed_mcp import install as install_managed_mcp
from src.tracking.artifact import render_summary
from src.tracking.deployment_ids import DeploymentIds
from src.tasks.tokens import warm_up_in_background
from src.tracking.payloads import PayloadStore
from src.tracking.recorder import Recorder

log = structlog.get_logger("oas.runtime")


@dataclass
class Runtime:
    """Everything a coordinator needs; built once at start-up, closed at shutdown."""

    settings: Settings
    services: Services
    recorder: Recorder
    payloads: PayloadStore
    started: float = field(default_factory=time.time)
    deployments: DeploymentServer | None = None
    mcp: ManagedMcpServers | None = None
    catalog: ModelCatalog = field(init=False)
    tokenizers: threading.Thread | None = None  # the warm-up of the token counter

    def __post_init__(self) -> None:
        self.catalog = ModelCatalog(self.settings)

    @classmethod
    def create(cls, settings: Settings) -> Runtime:
        payloads = PayloadStore(settings.payload_store_dir)
        api_url = settings.prefect_api_url if settings.tracking else None
        served = DeploymentIds() if api_url and settings.serve_deployments else None
        recorder = Recorder(api_url, payloads, render_artifact=render_summary,
                            grace=settings.tracking_grace,
                            concurrency=settings.tracking_writers, deployments=served)
        mcp = ManagedMcpServers.from_settings(settings)  # a broken mcp_servers section stops here
        return cls(settings, Services.create(settings), recorder, payloads,
                   mcp=mcp if mcp else None)

    def start(self) -> None:
        """Start background work (called inside the running event loop, at app start-up)."""
        self.recorder.start()
        # the first token count must not wait for LiteLLM's import (once per process:
        # `oas serve` starts this earlier still, beside the Prefect server)
        self.tokenizers = warm_up_in_background(self.settings.big_model,
                                                self.settings.small_model)
        if self.mcp is not None:
            install_managed_mcp(self.mcp)
            self.mcp.start()
        log.info("tracking", prefect_api=self.recorder.api_url or "off")
        if self.settings.code_execution:
            # Probing which sandbox works takes tens of ms: not on the first request's path.
            threading.Thread(target=sandbox_status, args=(self.settings,), daemon=True,
                             name="oas-sandbox-probe").start()
        if self.recorder.api_url and self.recorder.deployments is not None:
            # recorded runs wait (in the recorder) for these ids: they get the Retry button
            self.deployments = DeploymentServer(self.recorder.api_url, self.recorder.deployments)
            self.deployments.start()

    async def aclose(self) -> None:
        if self.mcp is not None:
            install_managed_mcp(None)
            await self.mcp.aclose()
        if self.deployments is not None:
            # in a thread: the requests cancelled at shutdown finish on this loop meanwhile,
            # and hand their runs to the recorder before it stops
            await asyncio.to_thread(self.deployments.stop)
        self.recorder.stop()
        await self.catalog.aclose()
        await self.services.aclose()
