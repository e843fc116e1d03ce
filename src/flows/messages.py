"""The `messages` flow: one Anthropic Messages request, stream or not.

It is an async generator: for a non-stream request it yields the finished message once;
for a stream it yields SSE bytes as the upstream produces them, and ends when the stream
ends, so the flow run's duration is the request's.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import aclosing
from typing import Any, TypeVar

from prefect import flow

from src.core.services import Services
from src.schemas.anthropic import MessagesRequest
from src.tasks.conversion.request import convert_request
from src.tasks.conversion.response import convert_response
from src.tasks.conversion.stream import StreamOutcome, stream_response
from src.tasks.routing import Route, resolve_model
from src.tasks.upstream import Attempts, RetryPolicy, call_upstream, open_upstream_stream
from src.tasks.usage import record_usage
from src.tasks.validation import validate_request
from src.tracking import annotate

T = TypeVar("T")


@flow(name="messages", persist_result=False, validate_parameters=False, log_prints=False)
async def messages_flow(request: dict[str, Any], services: Services) -> AsyncIterator[Any]:
    """validate -> resolve model -> convert request -> call upstream (each attempt, until
    one model answers) -> convert -> usage."""
    valid = validate_request(request)
    route = resolve_model(valid.model, services.settings)
    annotate(tags=[f"upstream:{route.upstream_model}"], upstream_model=route.upstream_model,
             provider=route.provider or services.upstream.name)
    bodies = {route.upstream_model: convert_request(valid, route)}
    attempts = Attempts(route.models, RetryPolicy.from_settings(services.settings))
    if valid.stream:
        chunks = await _attempt(attempts, valid, route, bodies,
                                lambda body: open_upstream_stream(services.upstream, body))
        route = route.answered_by(attempts.answered_by or route.upstream_model)
        outcome = StreamOutcome()
        try:
            async with aclosing(stream_response(chunks, valid.model, outcome)) as events:
                async for event in events:
                    yield event
        finally:
            await chunks.aclose()  # at once: a client that went away stops the upstream
        annotate(first_token_at=outcome.first_token_at)
        record_usage(route, outcome.usage, outcome.raw_usage, outcome.stop_reason,
                     outcome.tool_calls)
    else:
        completion = await _attempt(attempts, valid, route, bodies,
                                    lambda body: call_upstream(services.upstream, body))
        route = route.answered_by(attempts.answered_by or route.upstream_model)
        message = convert_response(completion, valid.model)
        tool_calls = [b["name"] for b in message["content"] if b["type"] == "tool_use"]
        record_usage(route, message["usage"], completion.get("usage"), message["stop_reason"],
                     tool_calls)
        yield message


async def _attempt(attempts: Attempts, valid: MessagesRequest, route: Route,
                   bodies: dict[str, dict[str, Any]],
                   call: Callable[[dict[str, Any]], Awaitable[T]]) -> T:
    """Run `call` (a call-upstream task) per attempt; a fallback model gets its own body."""

    def body_for(model: str) -> dict[str, Any]:
        if model not in bodies:
            bodies[model] = convert_request(valid, route.answered_by(model))
        return bodies[model]

    try:
        return await attempts.run(lambda model: call(body_for(model)))
    finally:
        answered = attempts.answered_by
        annotate(tags=attempts.tags(), **attempts.summary(),
                 **({"upstream_model": answered} if answered else {}))
