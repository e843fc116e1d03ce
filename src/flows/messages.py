"""The `messages` flow: one Anthropic Messages request, stream or not.

It is an async generator: for a non-stream request it yields the finished message once;
for a stream it yields SSE bytes as the upstream produces them, and ends when the stream
ends, so the flow run's duration is the request's.

When the request carries server tools that `oas` runs itself (web fetch, MCP servers,
code execution), the model may call them: each call runs as its own task, its result is
shown to the client and fed back to the model, and the model is called again, until it
answers, calls one of the client's own tools, or the loop's bounds are reached
(`pause_turn`, as Anthropic's API does).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from contextlib import aclosing
from typing import Any, TypeVar

import structlog
from prefect import flow

from src.core.ids import server_tool_use_id
from src.schemas.anthropic import MessagesRequest
from src.services import Services
from src.tasks.conversion.request import convert_request
from src.tasks.conversion.response import convert_response
from src.tasks.conversion.stream import StreamConverter, StreamOutcome, stream_response
from src.tasks.routing import Route, resolve_model
from src.tasks.server_tools import Toolbox
from src.tasks.server_tools.registry import plan_server_tools
from src.tasks.server_tools.web_search import (
    WebSearchStream,
    find_web_search,
    finish_message,
    message_searches,
    record_web_search,
    search_query,
)
from src.tasks.upstream import Attempts, RetryPolicy, call_upstream, open_upstream_stream
from src.tasks.usage import record_usage
from src.tasks.validation import validate_request
from src.tracking import annotate

T = TypeVar("T")

log = structlog.get_logger("oas.server_tools")


@flow(name="messages", persist_result=False, validate_parameters=False, log_prints=False)
async def messages_flow(
    request: dict[str, Any], services: Services, client: str | None = None
) -> AsyncGenerator[Any, None]:
    """validate -> resolve model -> plan server tools -> convert request -> call upstream
    (each attempt, until one model answers) -> convert -> [run server tools, call again]
    -> usage. `client` is the named client that sent it (routes may ask)."""
    valid = validate_request(request)
    route = await resolve_model(request, services.settings, client)
    annotate(
        tags=[f"upstream:{route.upstream_model}"],
        upstream_model=route.upstream_model,
        provider=route.provider or services.upstream.name,
    )
    toolbox = plan_server_tools(valid, services.settings)
    try:
        await toolbox.prepare()
        conversation = Conversation(valid, route, services, toolbox)
        if valid.stream:
            async for event in _stream(conversation):
                yield event
        else:
            yield await _whole(conversation)
    finally:
        await toolbox.aclose()


class Conversation:
    """The upstream side of one request: a body per model tried, and the turns a
    server-tool loop adds to it."""

    def __init__(
        self, valid: MessagesRequest, route: Route, services: Services, toolbox: Toolbox
    ) -> None:
        self.valid = valid
        self.route = route
        self.services = services
        self.toolbox = toolbox
        self.functions = toolbox.functions() if toolbox else None
        self.bodies = {route.upstream_model: self._body(route)}
        self.attempts = Attempts(route.models, RetryPolicy.from_settings(services.settings))
        self.added: list[dict[str, Any]] = []  # server-tool turns, for every model's body
        search = find_web_search(valid)
        self.search_query = search_query(valid) if search is not None else None

    def _body(self, route: Route) -> dict[str, Any]:
        return convert_request(self.valid, route, self.services.settings, self.functions)

    def body_for(self, model: str) -> dict[str, Any]:
        if model not in self.bodies:  # a fallback model gets its own conversion
            self.bodies[model] = self._body(self.route.answered_by(model))
        body = self.bodies[model]
        return {**body, "messages": [*body["messages"], *self.added]} if self.added else body

    async def call(self, call: Callable[[dict[str, Any]], Awaitable[T]]) -> T:
        """`call` (a call-upstream task) per attempt, then note who answered."""
        attempts = self.attempts
        try:
            return await attempts.run(lambda model: call(self.body_for(model)))
        finally:
            answered = attempts.answered_by
            annotate(tags=attempts.tags(), upstream_model=answered, **attempts.summary())
            if answered:
                self.route = self.route.answered_by(answered)

    async def run_server_tools(self, converter: StreamConverter) -> AsyncIterator[bytes]:
        """Run the segment's server calls (each its own task), show their results, and add
        the exchange to the conversation."""
        results = []
        for tool, call in converter.server_calls:
            log.info("server tool call", tool=call.name, tool_use_id=call.id)
            outcome = await tool.run(call)
            if outcome.is_error:
                log.info(
                    "server tool call ended in an error result", tool=call.name, tool_use_id=call.id
                )
            self.toolbox.count(tool)
            yield converter.emit_blocks(outcome.blocks)
            results.append((call, outcome))
        upstream_ids = {c.tool_use_id: converter.upstream_call_id(c) for c in converter.tools.calls}
        self.added.append(converter.segment_message())
        for call, outcome in results:
            self.added.append(
                {
                    "role": "tool",
                    "tool_call_id": upstream_ids[call.id],
                    "content": outcome.for_model,
                }
            )

    def next_turn(self, converter: StreamConverter, turns: int) -> tuple[bool, str | None]:
        """(whether to call the model again, the stop reason to end with if not)."""
        if not converter.server_calls or converter.client_tool_calls:
            return False, None  # an answer, or calls only the client can run
        if self.toolbox.out_of_budget(turns):
            return False, "pause_turn"
        return True, None


async def _stream(conversation: Conversation) -> AsyncIterator[bytes]:
    valid = conversation.valid
    outcome = StreamOutcome()
    search = WebSearchStream(conversation.search_query) if conversation.search_query else None
    converter = StreamConverter(
        valid.model, outcome, valid, server_tools=conversation.toolbox or None, search=search
    )
    upstream = conversation.services.upstream
    turns, stop_reason = 0, None
    while True:
        chunks = await conversation.call(lambda body: open_upstream_stream(upstream, body))
        # `message_start` leaves with the first chunks' events, in one write
        lead = converter.start() if turns == 0 else b""
        try:
            async with aclosing(stream_response(chunks, converter, lead)) as events:
                async for event in events:
                    yield event
        finally:
            await chunks.aclose()  # at once: a client that went away stops the upstream
        if not conversation.toolbox:
            break
        yield converter.end_segment()
        if not converter.server_calls:
            break
        async for event in conversation.run_server_tools(converter):
            yield event
        turns += 1
        again, stop_reason = conversation.next_turn(converter, turns)
        if not again:
            break
        converter.next_segment()
    yield converter.finish(
        stop_reason, conversation.toolbox.usage or None, conversation.toolbox.response_fields()
    )
    annotate(first_token_at=outcome.first_token_at)
    if outcome.provider:
        annotate(provider=outcome.provider)
    if search is not None and (search.hits or search.requests(outcome.raw_usage)):
        record_web_search(search.query, len(search.hits), search.requests(outcome.raw_usage))
    record_usage(
        conversation.route,
        outcome.usage,
        outcome.raw_usage,
        outcome.stop_reason,
        outcome.tool_calls,
    )


async def _whole(conversation: Conversation) -> dict[str, Any]:
    valid = conversation.valid
    converter = StreamConverter(
        valid.model, request=valid, keep_content=True, server_tools=conversation.toolbox or None
    )
    upstream = conversation.services.upstream
    turns, stop_reason = 0, None
    while True:
        completion = await conversation.call(lambda body: call_upstream(upstream, body))
        convert_response(completion, converter)
        if not conversation.toolbox:
            break
        converter.end_segment()
        if not converter.server_calls:
            break
        async for _ in conversation.run_server_tools(converter):
            pass
        turns += 1
        again, stop_reason = conversation.next_turn(converter, turns)
        if not again:
            break
        converter.next_segment()
    converter.finish(
        stop_reason, conversation.toolbox.usage or None, conversation.toolbox.response_fields()
    )
    message = converter.message()
    if conversation.search_query is not None:
        message = finish_message(
            message, completion, conversation.search_query, server_tool_use_id()
        )
        results, searches = message_searches(message)
        if results or searches:
            record_web_search(conversation.search_query, results, searches)
    outcome = converter.outcome
    if outcome.provider:
        annotate(provider=outcome.provider)
    record_usage(
        conversation.route,
        message["usage"],
        outcome.raw_usage,
        message["stop_reason"],
        outcome.tool_calls,
    )
    return message
