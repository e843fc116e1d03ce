"""POST /v1/messages/count_tokens: run the `count-tokens` flow as a recorded flow run."""

from __future__ import annotations

import asyncio
from typing import Any

import structlog

from src.coordinators.replies import ErrorReply, JsonReply, Reply
from src.coordinators.runs import end_run, fail_run, mark_first_byte, new_run
from src.coordinators.runtime import Runtime
from src.core.context import RequestContext
from src.core.errors import AnthropicError
from src.flows.count_tokens import count_tokens_flow
from src.tracking.run import CANCELLED, COMPLETED, current_run

log = structlog.get_logger("oas.count_tokens")


async def handle_count_tokens(runtime: Runtime, body: Any, ctx: RequestContext) -> Reply:
    """Answer `{"input_tokens": N}`, or the same 400 `/v1/messages` gives for bad input."""
    run = new_run("count-tokens", body, ctx, mode="count")
    runtime.recorder.begin(run)
    token = current_run.set(run)
    try:
        result = await count_tokens_flow.fn(body, runtime.services)
    except AnthropicError as exc:
        fail_run(run, exc)
        return ErrorReply(exc, ctx.request_id)
    except asyncio.CancelledError:
        run.finish(CANCELLED, "client went away")
        raise
    except Exception as exc:
        log.exception("count failed", request_id=ctx.request_id)
        error = AnthropicError("api_error", f"Internal error: {type(exc).__name__}")
        fail_run(run, error)
        return ErrorReply(error, ctx.request_id)
    else:
        mark_first_byte(run)
        run.finish(COMPLETED)
        return JsonReply(result)
    finally:
        current_run.reset(token)
        if run.ended is None:
            run.finish(CANCELLED, "ended early")
        end_run(runtime, run)
