"""count-tokens: how many input tokens a Messages request is, for the model it maps to.

The request is validated as `/v1/messages` validates it, converted exactly as it would be
sent upstream, and counted by the process's token counter (`src.services.tokenizer`).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from src.core.settings import Settings
from src.services.tokenizer import count_openai_tokens
from src.tasks.conversion.request import to_openai
from src.tasks.routing import map_model
from src.tasks.validation import parse_messages_request
from src.tracking import step


@dataclass(frozen=True, slots=True)
class TokenCount:
    """A request's count, the model it was counted for, and how much came from the cache."""

    input_tokens: int
    upstream_model: str
    parts: int
    reused: int


def count_request_tokens(body: Any, settings: Settings) -> TokenCount:
    """The input tokens of a Messages request (or a 400 `AnthropicError` if it is invalid).

    A count request has no `max_tokens`; it is supplied so the Messages parser can be the
    one that judges everything else.
    """
    if isinstance(body, dict):
        body = {**body, "max_tokens": 1, "stream": False}
    request = parse_messages_request(body)
    route = map_model(request.model, settings)
    upstream = to_openai(request, route)
    tokens, parts, reused = count_openai_tokens(
        route.upstream_model,
        upstream["messages"],
        upstream.get("tools"),
        upstream.get("tool_choice"),
    )
    return TokenCount(tokens, route.upstream_model, parts, reused)


@step("count-tokens")
async def count_tokens(request: dict[str, Any], settings: Settings) -> TokenCount:
    """Task: validate, map, convert and count, in a worker thread (tokenizing is CPU work)."""
    return await asyncio.to_thread(count_request_tokens, request, settings)
