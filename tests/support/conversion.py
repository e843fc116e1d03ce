"""The conversions the `messages` flow makes, composed from its own steps for unit tests.

A whole answer: `StreamConverter` with `convert_response` then `finish`, as the flow's
`_whole` does; a stream: `start`, `stream_response` over the chunks, then `finish`, as its
`_streamed` does. Tests therefore exercise the code path a request takes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from src.schemas.anthropic import MessagesRequest
from src.tasks.conversion.response import convert_response
from src.tasks.conversion.stream import StreamConverter, StreamOutcome, stream_response


def to_anthropic(
    completion: dict[str, Any], client_model: str, request: MessagesRequest | None = None
) -> dict[str, Any]:
    """The Anthropic message for a non-stream completion."""
    converter = StreamConverter(client_model, request=request, keep_content=True)
    convert_response(completion, converter)
    converter.finish()
    return converter.message()


async def convert_stream(
    chunks: AsyncIterator[dict[str, Any]],
    client_model: str,
    outcome: StreamOutcome,
    request: MessagesRequest | None = None,
) -> AsyncIterator[bytes]:
    """A whole stream: `message_start`, every chunk's events, then the message's end."""
    converter = StreamConverter(client_model, outcome, request)
    async for out in stream_response(chunks, converter, converter.start()):
        yield out
    yield converter.finish()
