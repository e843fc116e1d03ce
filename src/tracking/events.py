"""Task runs as Prefect's own task engine reports them: an event per task run carrying its
final state, with the flow run as a related resource. The server's task run recorder
turns them into task runs; they keep the timestamps of when each task really ran."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from typing import Any

from src.core.ids import local_uuid
from src.tracking.run import Run

STATE_NAMES = {
    "COMPLETED": "Completed",
    "FAILED": "Failed",
    "CANCELLED": "Cancelled",
    "CRASHED": "Crashed",
    "RUNNING": "Running",
    "PENDING": "Pending",
}


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat()


def task_run_events(run: Run, flow_run_id: str) -> list[dict[str, Any]]:
    """The events of every task of `run`, in order."""
    related = [
        {
            "prefect.resource.id": f"prefect.flow-run.{flow_run_id}",
            "prefect.resource.role": "flow-run",
            "prefect.resource.name": run.name,
        },
    ]
    events: list[dict[str, Any]] = []
    for n, task in enumerate(run.tasks):
        ended = task.ended or run.ended or time.time()
        task_run = {
            "name": task.name,
            "task_key": task.task_key,
            "dynamic_key": str(n),
            "empirical_policy": {"max_retries": 0, "retry_delay_seconds": 0.0},
            "tags": [],
            "labels": {},
            "task_inputs": {},
            "run_count": 1,
            "flow_run_run_count": 1,
            "expected_start_time": iso(task.started),
            "start_time": iso(task.started),
            "end_time": iso(ended),
            "total_run_time": max(0.0, ended - task.started),
        }
        # One event per task run, its final state: the payload carries the real start and
        # end times, so the dashboard shows when and how long it ran, and Prefect's
        # database takes half the rows a Running event before it would add.
        events.append(
            _event(
                task.id,
                task.name,
                task.state,
                task.message,
                ended,
                "RUNNING",
                task_run,
                related,
                str(local_uuid()),
                None,
            )
        )
    return events


def _event(
    task_id: uuid.UUID,
    name: str,
    state: str,
    message: str | None,
    occurred: float,
    previous: str | None,
    task_run: dict[str, Any],
    related: list[dict[str, str]],
    event_id: str,
    follows: str | None,
) -> dict[str, Any]:
    state_name = STATE_NAMES.get(state, state.title())
    return {
        "id": event_id,
        "occurred": iso(occurred),
        "event": f"prefect.task-run.{state_name}",
        "resource": {
            "prefect.resource.id": f"prefect.task-run.{task_id}",
            "prefect.resource.name": name,
            "prefect.run-count": "1",
            "prefect.state-message": message or "",
            "prefect.state-name": state_name,
            "prefect.state-timestamp": iso(occurred),
            "prefect.state-type": state,
            "prefect.orchestration": "client",
        },
        "related": related,
        "payload": {
            "intended": {"from": previous, "to": state},
            "initial_state": {
                "type": previous,
                "name": STATE_NAMES[previous],
                "message": "",
                "state_details": {},
            }
            if previous
            else None,
            "validated_state": {
                "type": state,
                "name": state_name,
                "message": message or "",
                "state_details": {},
                "data": None,
            },
            "task_run": task_run,
        },
        "follows": follows,
    }
