"""The process-wide state of a running server: settings, services and the recorder."""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass, field

import structlog

from src.coordinators.deployments import DeploymentServer
from src.coordinators.models import ModelCatalog
from src.core.config_file import ConfigError
from src.core.settings import Settings
from src.sandbox.service import close_services, sandbox_status
from src.services import Services
from src.tracking.artifact import render_summary
from src.tracking.deployment_ids import DeploymentIds
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
    catalog: ModelCatalog = field(init=False)

    def __post_init__(self) -> None:
        self.catalog = ModelCatalog(self.settings)

    @classmethod
    def create(cls, settings: Settings) -> Runtime:
        payloads = PayloadStore(settings.payload_store_dir)
        api_url = settings.prefect_api_url if settings.tracking else None
        served = DeploymentIds() if api_url and settings.serve_deployments else None
        recorder = Recorder(
            api_url,
            payloads,
            render_artifact=render_summary,
            grace=settings.tracking_grace,
            concurrency=settings.tracking_writers,
            deployments=served,
        )
        return cls(settings, Services.create(settings), recorder, payloads)

    def reload_config(self) -> bool:
        """Apply a changed OAS_CONFIG file (SIGHUP, `oas config reload`): routes, models
        and clients change for the next request; requests under way keep their route. A
        file that does not validate is refused and the old rules stay."""
        try:
            config = self.settings.reload_config()
        except ConfigError as exc:
            log.error("config reload refused; the previous configuration stays", problem=str(exc))
            return False
        log.info(
            "config reloaded",
            file=str(self.settings.config_file),
            routes=len(config.routes),
            models=len(config.models),
            clients=len(config.clients),
        )
        return True

    def start(self) -> None:
        """Start background work (called inside the running event loop, at app start-up)."""
        self.recorder.start()
        self.services.start()
        log.info("tracking", prefect_api=self.recorder.api_url or "off")
        if self.settings.code_execution:
            # Probing which sandbox works takes tens of ms: not on the first request's path.
            threading.Thread(
                target=sandbox_status, args=(self.settings,), daemon=True, name="oas-sandbox-probe"
            ).start()
        if self.recorder.api_url and self.recorder.deployments is not None:
            # recorded runs wait (in the recorder) for these ids: they get the Retry button
            self.deployments = DeploymentServer(self.recorder.api_url, self.recorder.deployments)
            self.deployments.start()

    async def aclose(self) -> None:
        if self.deployments is not None:
            # in a thread: the requests cancelled at shutdown finish on this loop meanwhile,
            # and hand their runs to the recorder before it stops
            await asyncio.to_thread(self.deployments.stop)
        self.recorder.stop()
        await self.catalog.aclose()
        await self.services.aclose()
        if self.settings.code_execution:
            await asyncio.to_thread(close_services)
