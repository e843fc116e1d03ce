"""The `replay` flow: run a recorded request again as a new flow run, perhaps on another model.

It runs through Prefect's own engine (its task runs are ordinary Prefect task runs), both
when `oas replay FLOW_RUN_ID` calls it and when an operator fills in the Run form of the
`replay` deployment that `oas serve` serves. The run reads like the one it replays: named
`replay · <original name>`, with the original's tags (the model's replaced when `model`
overrides it) plus `replay` and `replay-of:<id>`. (A retry of the same run is the
`messages` deployment's job: see `src.flows.retry`.)
"""

from __future__ import annotations

from typing import Any

from prefect import flow
from prefect.runtime import flow_run as this_flow_run

from src.core.settings import get_settings
from src.flows.stored import (
    Origin,
    Outcome,
    attach_summary,
    load_payload,
    read_original,
    retag,
    run_stored,
)
from src.tracking import Run

#: the beginning of every replay's name
NAME_PREFIX = "replay · "


@flow(name="replay", persist_result=False, log_prints=False, validate_parameters=True)
async def replay_flow(
    flow_run_id: str, model: str | None = None, echo: bool = False
) -> dict[str, Any]:
    """Replay the request of flow run `flow_run_id` (optionally on another `model`).

    Returns a short result; raises (so the run fails) if the replay fails again.
    `echo` prints the answer as it arrives (the CLI sets it).
    """
    original = await read_original(flow_run_id)
    tags = [t for t in original.tags if not (model and t.startswith("model:"))]
    labels = [*([f"model:{model[:80]}"] if model else []), "replay", f"replay-of:{original.id}"]
    my_id = this_flow_run.get_id()
    if my_id:
        await retag(my_id, tags, labels, name=f"{NAME_PREFIX}{original.name}")
    run = Run(
        flow_name="replay",
        name="replay",
        record_tasks=False,
        parameters={"request_id": original.request_id},
    )
    run.summary["replay_of"] = original.id
    outcome = Outcome(run)
    request, context = await load_payload(
        original.request_id, str(get_settings().payload_store_dir)
    )
    if model:
        request["model"] = model
    run.parameters.update(model=request.get("model"), stream=bool(request.get("stream")))
    await run_stored(request, outcome, Origin.of(original.tags, context), echo=echo)
    await attach_summary(outcome, "Replay summary")
    if my_id:
        await retag(my_id, tags, [*labels, *run.tags])
    if outcome.error is not None:
        raise outcome.error
    return {"replay_of": original.id, "message": outcome.message}
