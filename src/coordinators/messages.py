"""POST /v1/messages: run the `messages` flow as a recorded Prefect flow run."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

import anyio
import structlog

from src.coordinators.replies import ErrorReply, JsonReply, Reply, StreamReply
from src.coordinators.runs import end_run, fail_run, mark_first_byte, new_run
from src.coordinators.runtime import Runtime
from src.core.context import RequestContext
from src.core.errors import AnthropicError
from src.core.logging import log_payload
from src.flows.messages import messages_flow
from src.services.spend.budget import check_budget
from src.tasks.conversion.sse import sse_error
from src.tasks.server_tools.managed_mcp import opt_in_from_header
from src.tracking.run import CANCELLED, COMPLETED, Run

log = structlog.get_logger("oas.messages")


def _finish_summary(run: Run) -> None:
    if run.first_token_at is not None:
        run.summary["ttft_ms"] = (run.first_token_at - run.started) * 1000


async def handle_messages(runtime: Runtime, body: Any, ctx: RequestContext) -> Reply:
    """Answer one Messages request; the client's bytes never wait on Prefect."""
    opt_in_from_header(body, ctx.mcp_opt_in)  # kept with the stored request, for replays
    run = new_run("messages", body, ctx)
    runtime.recorder.begin(run)
    with run.current():
        log_payload(log, "request body", body)
    flow_events = messages_flow.fn(body, runtime.services, ctx.client)
    try:
        await _check_budget(runtime, ctx)
        first = await run.pull(flow_events)
        mark_first_byte(run)
    except AnthropicError as exc:
        fail_run(run, exc)
        end_run(runtime, run)
        return ErrorReply(exc, ctx.request_id, exc.upstream_model)
    except asyncio.CancelledError:
        run.finish(CANCELLED, "client went away")
        end_run(runtime, run)
        raise
    except Exception as exc:
        with run.current():
            log.exception("request failed", request_id=ctx.request_id)
        error = AnthropicError("api_error", f"Internal error: {type(exc).__name__}")
        fail_run(run, error)
        end_run(runtime, run)
        return ErrorReply(error, ctx.request_id)

    upstream_model = run.upstream_model
    if isinstance(first, dict):
        while True:  # let the flow finish its bookkeeping
            try:
                await run.pull(flow_events)
            except StopAsyncIteration:
                break
        _finish_summary(run)
        run.finish(COMPLETED)
        with run.current():
            log_payload(log, "response body", first)
        end_run(runtime, run)
        return JsonReply(first, upstream_model)

    return StreamReply(_stream(runtime, run, first, flow_events), upstream_model)


async def _check_budget(runtime: Runtime, ctx: RequestContext) -> None:
    """A named client past its monthly budget gets 402 before anything is sent upstream."""
    client = runtime.settings.config.client_table.by_name.get(ctx.client) if ctx.client else None
    spend = runtime.services.spend
    if client is not None and client.budget_usd is not None and spend is not None:
        await check_budget(spend, client)


async def _stream(
    runtime: Runtime,
    run: Run,
    first: bytes,
    flow_events: AsyncGenerator[Any, None],
) -> AsyncIterator[bytes]:
    pull = run.pull
    try:
        yield first
        while True:
            try:
                chunk = await pull(flow_events)
            except StopAsyncIteration:
                break
            yield chunk
        _finish_summary(run)
        run.finish(COMPLETED)
    except AnthropicError as exc:
        if not exc.sent_to_client:
            yield sse_error(exc.error_type, exc.message)
        _finish_summary(run)
        fail_run(run, exc)
    except (asyncio.CancelledError, GeneratorExit):
        run.finish(CANCELLED, "client disconnected")
        raise
    except Exception as exc:
        with run.current():
            log.exception("stream failed", request_id=run.parameters["request_id"])
        error = AnthropicError("api_error", f"Internal error: {type(exc).__name__}")
        yield sse_error(error.error_type, error.message)
        fail_run(run, error)
    finally:
        if run.ended is None:
            run.finish(CANCELLED, "stream closed early")
        # Close the flow (and with it the upstream response) now, even when cancelled:
        # a generator left suspended would hold the upstream connection until collected.
        with anyio.CancelScope(shield=True):
            await flow_events.aclose()
        end_run(runtime, run)
