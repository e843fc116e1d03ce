"""The `messages` deployment's flow: a recorded request run again in the same flow run.

Every recorded request run belongs to the `messages` deployment that `oas serve` serves.
When an operator clicks Retry on a failed run, the dashboard sets it to `AwaitingRetry`,
the runner of `oas serve` picks it up and runs this flow with the run's own parameters:
it loads the request the recorder stored and runs the `messages` flow's function under
Prefect's engine, so the same flow run ends Completed or Failed with real task runs and
logs. Started from the deployment's Run form with a `request_id`, it runs that stored
request as a new flow run.
"""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger
from prefect.runtime import flow_run as this_flow_run

from src.core.settings import get_settings
from src.flows.stored import Origin, Outcome, attach_summary, load_payload, retag, run_stored
from src.tracking import Run


@flow(name="messages", persist_result=False, log_prints=False, validate_parameters=True)
async def retry_messages(
    request_id: str, model: str | None = None, stream: bool = False, session_id: str | None = None
) -> dict[str, Any]:
    """Run stored request `request_id` again (on `model` if it differs from the stored one).

    `stream` and `session_id` describe the recorded request (the recorder writes them for
    the dashboard); the request itself comes from the payload store.
    """
    get_run_logger().info("running request %s again from its stored payload", request_id)
    run = Run(
        flow_name="messages",
        name="retry",
        record_tasks=False,
        parameters={"request_id": request_id, "model": model, "stream": stream},
    )
    outcome = Outcome(run)
    request, context = await load_payload(request_id, str(get_settings().payload_store_dir))
    if isinstance(model, str) and model and model not in ("unknown-model", request.get("model")):
        request["model"] = model
    run.parameters.update(model=request.get("model"), stream=bool(request.get("stream")))
    await run_stored(request, outcome, Origin.of(list(this_flow_run.tags or []), context))
    await attach_summary(outcome, "Retry summary")
    if my_id := this_flow_run.get_id():
        await retag(my_id, list(this_flow_run.tags or []), run.tags)
    if outcome.error is not None:
        raise outcome.error
    return {"request_id": request_id, "stop_reason": (outcome.message or {}).get("stop_reason")}
