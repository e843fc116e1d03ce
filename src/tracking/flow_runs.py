"""The body of a flow run's create, as the recorder sends it to `POST /flow_runs/`."""

from __future__ import annotations

from typing import Any

from src.tracking.events import STATE_NAMES
from src.tracking.run import Run


def flow_run_create(
    run: Run, flow_id: str, state: str, message: str | None, deployment_id: str | None = None
) -> dict[str, Any]:
    """A flow run in `state`, in `deployment_id` if its flow is served (Retry needs it)."""
    return {
        "flow_id": flow_id,
        "deployment_id": deployment_id,
        "name": run.name,
        "parameters": run.parameters,
        "tags": list(run.tags),
        "state": {"type": state, "name": STATE_NAMES[state], "message": message},
        # a create retried after a dropped connection must not make a second run
        "idempotency_key": str(run.id),
    }


def join_messages(first: str | None, second: str) -> str:
    """A state message with a note after it."""
    return f"{first} ({second})" if first else second
