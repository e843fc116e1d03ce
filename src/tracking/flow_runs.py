"""A flow run's create body and its final write, as the recorder sends them to Prefect."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
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


class CreateBody:
    """A run's create body, made when the call is sent (a callable `PrefectApi.call`
    takes): with the tags added meanwhile (a PATCH less), and, when `late_if()` holds on
    the first attempt, the run that has ended by then written whole, in one call, its
    state message saying how late (a retried attempt may find the Running run made)."""

    def __init__(
        self,
        run: Run,
        flow_id: str,
        deployment_id: str | None,
        *,
        final: bool,
        late_if: Callable[[], bool],
        on_late: Callable[[float], None],
    ) -> None:
        self.run, self.flow_id, self.deployment_id, self.final = run, flow_id, deployment_id, final
        state, message = (run.state, run.message) if final else ("RUNNING", None)
        self.body = flow_run_create(run, flow_id, state, message, deployment_id)
        self.late_if, self.on_late = late_if, on_late
        self._sent = False

    def __call__(self) -> dict[str, Any]:
        first, self._sent = not self._sent, True
        run = self.run
        if first and not self.final and self.late_if():
            self.final = True
            lag = time.time() - (run.ended or run.started)
            self.on_late(lag)
            note = f"recorded {lag:.1f}s late; ran {run.duration * 1000:.0f} ms"
            message = join_messages(run.message, note)
            self.body.update(
                flow_run_create(run, self.flow_id, run.state, message, self.deployment_id)
            )
        self.body["tags"] = list(run.tags)
        return self.body


def join_messages(first: str | None, second: str) -> str:
    """A state message with a note after it."""
    return f"{first} ({second})" if first else second


async def finish_flow_run(
    call: Callable[..., Awaitable[Any]],
    run: Run,
    flow_run_id: str,
    tags_written: list[str],
    running_acked: float | None,
) -> None:
    """Tags (if the flow added some), then the final state of a run created Running.

    Prefect stamps states with its own clock (a client cannot give their times, nor a
    run's start, end or run time) and counts Running to final as the duration: so the
    final state waits until Prefect's answer to the create plus the real duration."""
    if running_acked is not None:
        wait = running_acked + run.duration - time.time()
        if wait > 0:
            await asyncio.sleep(wait)
    if tags_written != run.tags:
        # Before the final state, so that a finished run always shows all its tags.
        await call("PATCH", f"/flow_runs/{flow_run_id}", json={"tags": list(run.tags)})
    state = {"type": run.state, "name": STATE_NAMES[run.state], "message": run.message}
    await call("POST", f"/flow_runs/{flow_run_id}/set_state", json={"state": state, "force": True})
