"""The `replay` flow: run a recorded request again, with today's configuration.

It runs through Prefect's own engine (its task runs are ordinary Prefect task runs), both
when `oas replay FLOW_RUN_ID` calls it and when an operator clicks "Run" on the `replay`
deployment that `oas serve` serves. The request comes from the payload store, found through
the original flow run's `request_id` parameter; `model` overrides the model it asked for.
"""

from __future__ import annotations

import sys
from typing import Any

import orjson
from prefect import flow, get_client
from prefect.artifacts import acreate_markdown_artifact
from prefect.runtime import flow_run as this_flow_run

from src.core.errors import AnthropicError
from src.services import Services
from src.core.settings import get_settings
from src.flows.messages import messages_flow
from src.tracking import Run, current_run, step
from src.tracking.artifact import render_summary
from src.tracking.payloads import PayloadStore


@step("load-payload")
async def load_payload(flow_run_id: str, store_dir: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Task: the original request (and its context) of a recorded flow run."""
    async with get_client() as client:
        original = await client.read_flow_run(flow_run_id)  # type: ignore[arg-type]
    request_id = (original.parameters or {}).get("request_id")
    if not request_id:
        raise AnthropicError("not_found_error",
                             f"Flow run {flow_run_id} has no request_id parameter: not an oas request.")
    try:
        request, context = PayloadStore(store_dir).load(request_id)
    except FileNotFoundError:
        raise AnthropicError("not_found_error",
                             f"The payload of request {request_id} is no longer stored "
                             "(pruned, or recorded on another machine).") from None
    return request, context


def _text_of_sse(event: bytes) -> str:
    """The text and thinking deltas inside a chunk of our own SSE bytes."""
    out = []
    for frame in event.split(b"\n\n"):
        for line in frame.split(b"\n"):
            if line.startswith(b"data: "):
                data = orjson.loads(line[6:])
                delta = data.get("delta") or {}
                out.append(delta.get("text") or delta.get("thinking") or "")
                if data.get("type") == "error":
                    out.append(f"\n[error] {data['error']['message']}\n")
    return "".join(out)


@flow(name="replay", persist_result=False, log_prints=False, validate_parameters=True)
async def replay_flow(flow_run_id: str, model: str | None = None, echo: bool = False) -> dict[str, Any]:
    """Replay the request of flow run `flow_run_id` (optionally on another `model`).

    Returns a short result; raises (so the run fails) if the replay fails again.
    `echo` prints the answer as it arrives (the CLI sets it).
    """
    settings = get_settings()
    summary_run = Run(flow_name="replay", name="replay", parameters={}, record_tasks=False)
    summary_run.summary["replay_of"] = flow_run_id
    token = current_run.set(summary_run)
    services = Services.create(settings)
    result: dict[str, Any] = {"replay_of": flow_run_id}
    error: AnthropicError | None = None
    try:
        request, _context = await load_payload(flow_run_id, str(settings.payload_store_dir))
        if model:
            request["model"] = model
        summary_run.parameters.update(model=request.get("model"), stream=request.get("stream") is True)
        async for item in messages_flow.fn(request, services):
            if isinstance(item, dict):
                result["message"] = item
                if echo:
                    for block in item.get("content", []):
                        if block.get("type") == "text":
                            print(block["text"], flush=True)
            else:
                text = _text_of_sse(item)
                if "event: error" in item.decode(errors="replace"):
                    error = AnthropicError("api_error", text.strip())
                if echo and text:
                    sys.stdout.write(text)
                    sys.stdout.flush()
        if echo and request.get("stream") is True:
            print(flush=True)
    except AnthropicError as exc:
        error = exc
    finally:
        current_run.reset(token)
        await services.aclose()
    summary_run.finish("FAILED" if error else "COMPLETED",
                       f"{error.error_type}: {error.message}" if error else None)
    await _label(summary_run, error)
    if error is not None:
        raise error
    return result


async def _label(run: Run, error: AnthropicError | None) -> None:
    """Tag this flow run as a replay of its original and attach the summary artifact."""
    my_id = this_flow_run.get_id()
    labels = ["replay", f"replay-of:{run.summary['replay_of']}",
              *(t for t in run.tags), *([f"error:{error.error_type}"] if error else [])]
    run.summary.setdefault("upstream_model", None)
    await acreate_markdown_artifact(render_summary(run), description="Replay summary")
    if my_id:
        async with get_client() as client:
            current = await client.read_flow_run(my_id)
            merged = sorted(set(current.tags) | set(labels))
            await client.update_flow_run(my_id, tags=merged)

