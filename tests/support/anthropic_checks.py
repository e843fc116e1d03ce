"""Check `oas`'s answers the way a strict Anthropic client would read them.

`check_exchange` looks at one recorded HTTP exchange and returns what is wrong with it
(an empty list when nothing is): a stream must be a well-formed sequence of Anthropic
events (one `message_start`, blocks opened, filled and closed in index order with deltas
of their own kind, tool input that parses as a JSON object, a stop reason, one
`message_stop`), every event must validate against the official SDK's types, a JSON
message must validate as `anthropic.types.Message`, and an error must have Anthropic's
shape and the status of its type.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from anthropic.types import Message, RawMessageStreamEvent
from pydantic import TypeAdapter, ValidationError

from src.core.errors import ERROR_STATUS
from tests.support.recording import Exchange

_EVENT = TypeAdapter(RawMessageStreamEvent)
_DELTA_FOR_BLOCK = {
    "text": {"text_delta", "citations_delta"},
    "thinking": {"thinking_delta", "signature_delta"},
    "tool_use": {"input_json_delta"},
    "server_tool_use": {"input_json_delta"},  # Anthropic streams a server tool's input too
}
PROBE_PATHS = {"/", "/api/hello"}


def parse_sse(body: bytes) -> list[tuple[str, dict[str, Any]]]:
    """(event name, data) pairs of an SSE body; raises on a malformed frame."""
    events = []
    for frame in body.decode("utf-8").split("\n\n"):
        if not frame.strip():
            continue
        name, data = None, []
        for line in frame.split("\n"):
            if line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].strip())
            elif line and not line.startswith(":"):
                raise ValueError(f"not an SSE line: {line!r}")
        if name is None or not data:
            raise ValueError(f"SSE frame without event or data: {frame!r}")
        events.append((name, orjson.loads("\n".join(data))))
    return events


@dataclass
class StreamCheck:
    """A stream read as a client reads it: the assembled message, or the error it ended in."""

    message: dict[str, Any] | None
    problems: list[str]
    error: dict[str, Any] | None = None  # Anthropic's `error` event, when the stream ended in one


def check_stream(body: bytes) -> StreamCheck:
    """The message a stream assembles to, and every way the stream breaks the protocol.

    A stream may end early in one `error` event (the API's way to fail after the status
    line went out); that is recorded in `error`, not as a protocol problem.
    """
    problems: list[str] = []
    try:
        events = parse_sse(body)
    except (ValueError, orjson.JSONDecodeError) as exc:
        return StreamCheck(None, [f"unreadable SSE: {exc}"])
    if not events or events[0][0] != "message_start":
        return StreamCheck(
            None, [f"stream does not begin with message_start: {[n for n, _ in events[:3]]}"]
        )
    error = None
    if events[-1][0] == "error":
        error = events.pop()[1].get("error")
        well_formed = isinstance(error, dict) and error.get("type") in ERROR_STATUS
        if not (well_formed and error.get("message")):
            problems.append(f"malformed error event: {error!r}")
    message: dict[str, Any] = dict(events[0][1]["message"])
    message["content"] = []
    open_index: int | None = None
    partial_json: dict[int, str] = {}
    stopped = False
    for name, data in events:
        if stopped:
            problems.append(f"{name} after message_stop")
        if data.get("type") != name:
            problems.append(f"event {name} carries type {data.get('type')}")
        if name == "error":
            problems.append(f"error event before the end: {data.get('error')}")
            continue
        if name == "ping":  # keep-alive; not one of the SDK's message events
            continue
        try:
            _EVENT.validate_python(data)
        except ValidationError as exc:
            problems.append(f"{name} does not validate: {exc.errors()[0]}")
            continue
        if name == "content_block_start":
            if open_index is not None:
                problems.append(f"block {data['index']} opened while {open_index} is open")
            if data["index"] != len(message["content"]):
                problems.append(f"block index {data['index']}, expected {len(message['content'])}")
            message["content"].append(dict(data["content_block"]))
            open_index = data["index"]
        elif name == "content_block_delta":
            if data["index"] != open_index:
                problems.append(f"delta for block {data['index']} while {open_index} is open")
                continue
            block = message["content"][-1]  # the open block is the last one
            kind = data["delta"]["type"]
            if kind not in _DELTA_FOR_BLOCK.get(block["type"], set()):
                problems.append(f"{kind} inside a {block['type']} block")
            elif kind == "text_delta":
                block["text"] += data["delta"]["text"]
            elif kind == "thinking_delta":
                block["thinking"] += data["delta"]["thinking"]
            elif kind == "signature_delta":
                block["signature"] = data["delta"]["signature"]
            elif kind == "input_json_delta":
                piece = data["delta"]["partial_json"]
                partial_json[open_index] = partial_json.get(open_index, "") + piece
        elif name == "content_block_stop":
            if data["index"] != open_index:
                problems.append(f"stop for block {data['index']} while {open_index} is open")
            elif message["content"][-1]["type"] == "tool_use":
                raw = partial_json.get(open_index, "") or "{}"
                try:
                    value = orjson.loads(raw)
                except orjson.JSONDecodeError:
                    problems.append(f"tool input is not JSON: {raw!r}")
                    value = None
                if not isinstance(value, dict):
                    problems.append(f"tool input is not an object: {raw!r}")
                message["content"][-1]["input"] = value
            open_index = None
        elif name == "message_delta":
            message["stop_reason"] = data["delta"].get("stop_reason")
            message["usage"] = {**message.get("usage", {}), **data.get("usage", {})}
        elif name == "message_stop":
            stopped = True
    if error is not None:
        return StreamCheck(None, problems, error)
    if open_index is not None:
        problems.append(f"block {open_index} never closed")
    if not stopped:
        problems.append("no message_stop")
    problems.extend(check_message(message))
    return StreamCheck(message, problems)


def check_message(message: Any) -> list[str]:
    """A complete message, as `messages.create` would return it."""
    try:
        parsed = Message.model_validate(message)
    except ValidationError as exc:
        return [f"message does not validate: {exc.errors()[:2]}"]
    problems = []
    if parsed.stop_reason is None:
        problems.append("message has no stop_reason")
    if not parsed.content:
        problems.append("message has no content")
    uses = [b for b in parsed.content if b.type == "tool_use"]
    if uses and parsed.stop_reason != "tool_use":
        problems.append(f"tool_use blocks with stop_reason {parsed.stop_reason}")
    if len({b.id for b in uses}) != len(uses):
        problems.append("duplicate tool_use ids")
    return problems


def check_error(status: int, body: Any) -> list[str]:
    """An error body in Anthropic's shape, with the status its type goes with."""
    shaped = isinstance(body, dict) and body.get("type") == "error"
    if not (shaped and isinstance(body.get("error"), dict)):
        return [f"error body not in Anthropic's shape: {body!r}"]
    kind, message = body["error"].get("type"), body["error"].get("message")
    problems = []
    if kind not in ERROR_STATUS:
        problems.append(f"unknown error type {kind!r}")
    elif ERROR_STATUS[kind] != status and not (kind == "api_error" and status >= 500):
        problems.append(f"{kind} sent with status {status}")
    if not message:
        problems.append("error without a message")
    return problems


def check_exchange(exchange: Exchange) -> list[str]:
    """What is wrong with one answer of `oas` to Claude Code (empty: nothing)."""
    where = f"{exchange.method} {exchange.path}"
    if not exchange.complete:
        return [f"{where}: response never finished"]
    if exchange.status >= 400:
        try:
            body = exchange.response_json()
        except orjson.JSONDecodeError:
            return [f"{where}: {exchange.status} with a non-JSON body"]
        return [f"{where}: {p}" for p in check_error(exchange.status, body)]
    if exchange.path in PROBE_PATHS:
        return [] if exchange.status == 200 else [f"{where}: status {exchange.status}"]
    if exchange.path == "/api/event_logging/batch":
        return [] if exchange.status == 200 else [f"{where}: status {exchange.status}"]
    if exchange.path == "/v1/messages/count_tokens":
        body = exchange.response_json()
        count = body.get("input_tokens") if isinstance(body, dict) else None
        if isinstance(count, int) and count > 0:
            return []
        return [f"{where}: no input_tokens in {body!r}"]
    if exchange.path == "/v1/messages":
        if exchange.is_stream:
            checked = check_stream(exchange.response_body)
            problems = checked.problems
            if checked.error is not None:
                problems.append(f"stream ended in an error: {checked.error}")
        else:
            problems = check_message(exchange.response_json())
        return [f"{where}: {p}" for p in problems]
    return [f"{where}: a path Claude Code is not expected to call (status {exchange.status})"]


def stream_message(exchange: Exchange) -> dict[str, Any]:
    """The message a recorded `/v1/messages` answer carried, stream or not."""
    if exchange.is_stream:
        checked = check_stream(exchange.response_body)
        assert checked.message is not None and not checked.problems, checked
        return checked.message
    return exchange.response_json()
