"""The `messages` flow: one Anthropic Messages request, stream or not.

It is an async generator: for a non-stream request it yields the finished message once;
for a stream it yields SSE bytes as the upstream produces them, and ends when the stream
ends, so the flow run's duration is the request's.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from prefect import flow

from src.core.services import Services
from src.tasks.conversion.request import convert_request
from src.tasks.conversion.response import convert_response
from src.tasks.conversion.stream import StreamOutcome, stream_response
from src.tasks.routing import resolve_model
from src.tasks.upstream import call_upstream, open_upstream_stream
from src.tasks.usage import record_usage
from src.tasks.validation import validate_request
from src.tracking import annotate


@flow(name="messages", persist_result=False, validate_parameters=False, log_prints=False)
async def messages_flow(request: dict[str, Any], services: Services) -> AsyncIterator[Any]:
    """validate -> resolve model -> convert request -> call upstream -> convert -> usage."""
    valid = validate_request(request)
    route = resolve_model(valid.model, services.settings)
    annotate(tags=[f"upstream:{route.upstream_model}"], upstream_model=route.upstream_model,
             provider=route.provider or services.upstream.name)
    body = convert_request(valid, route, services.settings)
    if valid.stream:
        chunks = await open_upstream_stream(services.upstream, body)
        outcome = StreamOutcome()
        async for event in stream_response(chunks, valid.model, outcome, valid):
            yield event
        annotate(first_token_at=outcome.first_token_at)
        record_usage(route, outcome.usage, outcome.raw_usage, outcome.stop_reason,
                     outcome.tool_calls)
    else:
        completion = await call_upstream(services.upstream, body)
        message = convert_response(completion, valid.model, valid)
        tool_calls = [b["name"] for b in message["content"] if b["type"] == "tool_use"]
        record_usage(route, message["usage"], completion.get("usage"), message["stop_reason"],
                     tool_calls)
        yield message
