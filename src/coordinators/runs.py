"""What every coordinator does with a `Run`: name it, mark its first byte, hand it over.

Shared by the `messages` and `count-tokens` coordinators so that every request's flow run
is named and tagged the same way, and every finished request is counted in the process
metrics exactly once, at the point where it goes to the recorder.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import structlog

from src.core.context import RequestContext, session_from_metadata
from src.core.errors import AnthropicError
from src.core.metrics import metrics
from src.tasks.request_kind import request_kind
from src.tracking.run import FAILED, Run

if TYPE_CHECKING:
    from src.coordinators.runtime import Runtime

log = structlog.get_logger("oas.runs")

# Tasks whose failure is the upstream's, not the client's (for `oas_upstream_errors`).
UPSTREAM_TASKS = frozenset({"call-upstream", "stream-response"})


def new_run(flow_name: str, body: Any, ctx: RequestContext, *, mode: str | None = None) -> Run:
    """A run named and tagged so the dashboard list can be scanned by eye.

    `mode` names what kind of answer this is (`count` for token counts); by default it is
    `stream` or `sync` from the request body.
    """
    model = body.get("model") if isinstance(body, dict) else None
    model = model if isinstance(model, str) and model else "unknown-model"
    stream = body.get("stream") is True if isinstance(body, dict) and mode is None else False
    label = mode or ("stream" if stream else "sync")
    kind = mode or ("stream" if stream else "non-stream")
    short = ctx.request_id.removeprefix("req_")[:8]
    ctx.session_id = ctx.session_id or session_from_metadata(body)  # Claude Code before 2.1
    run = Run(
        flow_name=flow_name,
        name=f"{model[:60]} · {label} · {short}",
        parameters={
            "request_id": ctx.request_id,
            "model": model,
            "stream": stream,
            "session_id": ctx.session_id,
        },
        tags=[f"model:{model[:80]}", kind],
    )
    run.summary["mode"] = kind
    if ctx.session_id:
        run.add_tags(f"session:{ctx.session_id}")
    if ctx.client:
        run.add_tags(f"client:{ctx.client}")
        run.summary["client"] = ctx.client
    if mode is None:  # a Messages request: a session's main turn or a side request
        run.add_tags(f"kind:{request_kind(body)}")
    run.payload = body if isinstance(body, dict) else None
    run.summary["context"] = ctx.as_payload_context()
    return run


def mark_first_byte(run: Run) -> None:
    """Note that the answer's first byte is ready (for the time-to-first-byte metric)."""
    run.summary.setdefault("ttfb_ms", (time.time() - run.started) * 1000)


def fail_run(run: Run, error: AnthropicError) -> None:
    """End a run as failed with the Anthropic error the client got: the closing line of its
    Logs tab, an `error:<type>` tag, and one error in the model's counters."""
    with run.current():
        (log.warning if error.status >= 500 else log.info)(
            "request failed", error_type=error.error_type, status=error.status, error=error.message
        )
    run.add_tags(f"error:{error.error_type}")
    run.finish(FAILED, f"{error.error_type}: {error.message}")
    metrics.record_error(run.upstream_model or run.parameters.get("model") or "-")


def end_run(runtime: Runtime, run: Run) -> None:
    """Count the finished run in the process metrics, then hand it to the recorder."""
    try:
        observe_run(run)
    except Exception:
        log.exception("could not count the run in the metrics", flow_run=str(run.id))
    try:
        record_spend(runtime, run)
    except Exception:
        log.exception("could not record the run's spend", flow_run=str(run.id))
    runtime.recorder.end(run)


def record_spend(runtime: Runtime, run: Run) -> None:
    """Queue what an answered request cost for the ledger (written off the request path)."""
    if run.flow_name != "messages" or runtime.services.spend is None:
        return
    client = run.summary.get("client")
    named = runtime.settings.config.client_table.by_name.get(client) if client else None
    runtime.services.spend.record_answer(
        run.summary,
        client=client,
        urgent=named is not None and named.budget_usd is not None,
        model=str(run.upstream_model or run.parameters.get("model")),
        session=run.parameters.get("session_id"),
        request_id=run.parameters["request_id"],
    )


def observe_run(run: Run) -> None:
    """One observation per finished request: outcome, latencies, error type, tool results."""
    error_type = next((t[6:] for t in run.tags if t.startswith("error:")), None)
    failed_task = next((t.name for t in run.tasks if t.state == FAILED), None)
    ttfb = run.summary.get("ttfb_ms")
    ttft = run.summary.get("ttft_ms")
    metrics.record_request(
        flow=run.flow_name,
        mode=str(run.summary.get("mode") or "unknown"),
        outcome=run.state.lower(),
        duration=run.duration,
        first_byte=ttfb / 1000 if isinstance(ttfb, (int, float)) else None,
        first_token=ttft / 1000 if isinstance(ttft, (int, float)) else None,
        error_type=error_type if run.state == FAILED else None,
        upstream_error=failed_task in UPSTREAM_TASKS,
    )
    if run.flow_name == "messages" and run.state == "COMPLETED" and run.payload is not None:
        metrics.record_tool_results(returned_tool_results(run.payload))


def returned_tool_results(body: dict[str, Any]) -> list[tuple[str, bool]]:
    """The tool results this request returns, as (tool name, is_error).

    Only the last user turn counts: Claude Code resends the whole history every turn, and
    a result is news only once. Names come from the `tool_use` blocks they answer.
    """
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return []
    last = messages[-1]
    if (
        not isinstance(last, dict)
        or last.get("role") != "user"
        or not isinstance(last.get("content"), list)
    ):
        return []
    names: dict[str, str] = {}
    for message in reversed(messages[:-1]):
        if isinstance(message, dict) and message.get("role") == "assistant":
            content = message.get("content")
            for block in content if isinstance(content, list) else []:
                if isinstance(block, dict) and block.get("type") == "tool_use":
                    names[str(block.get("id"))] = str(block.get("name") or "unknown")
            break
    return [
        (names.get(str(block.get("tool_use_id")), "unknown"), block.get("is_error") is True)
        for block in last["content"]
        if isinstance(block, dict) and block.get("type") == "tool_result"
    ]
