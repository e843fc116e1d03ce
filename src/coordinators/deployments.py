"""The deployments `oas serve` serves, so operators can retry and replay from the Prefect UI.

- `messages/messages`: every recorded request run belongs to it. Retry on a failed run
  sets it to AwaitingRetry; the runner here runs the same flow run again from the stored
  request (`src.flows.retry`).
- `replay/replay`: the `replay` flow (parameters `flow_run_id`, optional `model`), started
  from the deployment's Run form or `prefect deployment run replay/replay`.

A Prefect runner on a background thread serves both (it polls the API and runs each flow
run in its own process). `prefect.yaml` declares the same deployments; a test keeps the
two in step. The runner talks to `api_url` only, whatever else the process was told.

The runner's flow-run processes are copies of `oas` that inherit its environment: they
need the upstream key to replay and retry, and nothing else secret, so client keys and
MCP tokens leave the environment first.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any, TypedDict

import structlog

from src.tracking.deployment_ids import DeploymentIds

log = structlog.get_logger("oas.deployments")


class DeploymentSpec(TypedDict):
    name: str
    tags: list[str]
    description: str


MESSAGES_DEPLOYMENT: DeploymentSpec = {
    "name": "messages",
    "tags": [],
    "description": "Every request oas records is a run of this deployment: Retry on a failed "
    "run runs its stored request again in the same flow run, with this server's current "
    "configuration. From the Run form: give the request_id of a recorded request.",
}
REPLAY_DEPLOYMENT: DeploymentSpec = {
    "name": "replay",
    "tags": ["replay"],
    "description": "Replay a recorded oas request: give the flow run id of the original "
    "(and optionally another model). Runs with this server's current configuration.",
}


class DeploymentServer:
    """Serves the deployments until `stop()`; failures are logged, never fatal."""

    def __init__(
        self, api_url: str, ids: DeploymentIds | None = None, poll_seconds: float = 2.0
    ) -> None:
        self.api_url = api_url
        self.ids = ids or DeploymentIds()
        self.poll_seconds = poll_seconds
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: Any = None
        self._stopping = False
        self.ready = threading.Event()

    @property
    def deployment_id(self) -> str | None:
        """The `replay` deployment's id, once registered."""
        return self.ids.get("replay")

    def start(self) -> None:
        from src.core.child_env import forget_client_secrets

        forget_client_secrets()  # the runner's flow-run processes inherit the environment
        self._thread = threading.Thread(target=self._main, name="oas-deployments", daemon=True)
        self._thread.start()

    def _main(self) -> None:
        from prefect.settings import PREFECT_API_URL, temporary_settings

        self._loop = asyncio.new_event_loop()
        try:
            with temporary_settings({PREFECT_API_URL: self.api_url}):
                self._loop.run_until_complete(self._serve())
        except Exception as exc:
            log.warning(
                "the deployments are not served: no Retry or Run from the dashboard", error=str(exc)
            )
        finally:
            self.ids.unavailable()
            self._loop.close()

    async def _serve(self) -> None:
        from prefect.deployments.runner import EntrypointType
        from prefect.runner import Runner

        from src.flows.replay import replay_flow
        from src.flows.retry import retry_messages

        runner = Runner(name="oas", query_seconds=self.poll_seconds, pause_on_shutdown=False)
        self._runner = runner
        ids = {}
        for flow, spec in ((retry_messages, MESSAGES_DEPLOYMENT), (replay_flow, REPLAY_DEPLOYMENT)):
            deployment = await flow.ato_deployment(
                name=spec["name"],
                tags=spec["tags"],
                description=spec["description"],
                entrypoint_type=EntrypointType.MODULE_PATH,
            )
            ids[flow.name] = str(await runner.aadd_deployment(deployment))
        self.ids.register(ids)
        if self._stopping:  # the server stopped while the deployments were registered
            return
        log.info("serving deployments", deployments=["messages/messages", "replay/replay"])
        self.ready.set()
        await runner.start()

    def stop(self) -> None:
        """Stop the runner (a flow run it runs is left to its own process)."""
        self._stopping = True
        self.ids.unavailable()  # the recorder's last runs must not wait for ids any more
        loop, runner = self._loop, self._runner
        if loop is not None and runner is not None and not loop.is_closed():
            try:
                asyncio.run_coroutine_threadsafe(runner.astop(), loop).result(10)
            except Exception:
                pass
        if self._thread is not None:
            self._thread.join(10)
