"""The deployments `oas serve` serves, so operators can start them from the Prefect UI.

One: `replay`, the `replay` flow, run by a Prefect runner in a background thread (the
runner polls the API and runs each flow run in its own process). Those processes are
copies of `oas` that inherit its environment: they need the upstream key to replay, and
nothing else secret, so client keys and MCP tokens leave the environment first.
`prefect.yaml` declares the same deployment; a test keeps the two in step.
"""

from __future__ import annotations

import asyncio
import threading

import structlog

log = structlog.get_logger("oas.deployments")

REPLAY_DEPLOYMENT = {
    "name": "replay",
    "tags": ["replay"],
    "description": "Replay a recorded oas request: give the flow run id of the original "
    "(and optionally another model). Runs with this server's current configuration.",
}


class DeploymentServer:
    """Serves the replay deployment until `stop()`; failures are logged, never fatal."""

    def __init__(self, poll_seconds: float = 2.0) -> None:
        self.poll_seconds = poll_seconds
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: object | None = None
        self.deployment_id: str | None = None
        self.ready = threading.Event()

    def start(self) -> None:
        from src.core.child_env import forget_client_secrets

        forget_client_secrets()  # the runner's flow-run processes inherit the environment
        self._thread = threading.Thread(target=self._main, name="oas-deployments", daemon=True)
        self._thread.start()

    def _main(self) -> None:
        self._loop = asyncio.new_event_loop()
        try:
            self._loop.run_until_complete(self._serve())
        except Exception as exc:  # noqa: BLE001 - serving deployments is optional
            log.warning("the replay deployment is not served", error=str(exc))
        finally:
            self._loop.close()

    async def _serve(self) -> None:
        from prefect.deployments.runner import EntrypointType
        from prefect.runner import Runner

        from src.flows.replay import replay_flow

        runner = Runner(name="oas", query_seconds=self.poll_seconds, pause_on_shutdown=False)
        self._runner = runner
        deployment = await replay_flow.ato_deployment(
            name=REPLAY_DEPLOYMENT["name"],
            tags=REPLAY_DEPLOYMENT["tags"],
            description=REPLAY_DEPLOYMENT["description"],
            entrypoint_type=EntrypointType.MODULE_PATH,
        )
        self.deployment_id = str(await runner.aadd_deployment(deployment))
        log.info("serving the replay deployment", deployment="replay/replay")
        self.ready.set()
        await runner.start()

    def stop(self) -> None:
        if self._loop is None or self._runner is None or self._loop.is_closed():
            return
        runner = self._runner
        try:
            asyncio.run_coroutine_threadsafe(runner.astop(), self._loop).result(10)  # type: ignore[attr-defined]
        except Exception:  # noqa: BLE001
            pass
        if self._thread is not None:
            self._thread.join(10)
