"""The stream checker the Claude Code tests rely on catches what a strict client would."""

from __future__ import annotations

import orjson
import pytest

from tests.support.anthropic_checks import check_error, check_stream

START = {
    "type": "message_start",
    "message": {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "m",
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {"input_tokens": 1, "output_tokens": 0},
    },
}


def _sse(*events: dict) -> bytes:
    return b"".join(
        b"event: " + e["type"].encode() + b"\ndata: " + orjson.dumps(e) + b"\n\n" for e in events
    )


def _block(index: int, block: dict) -> dict:
    return {"type": "content_block_start", "index": index, "content_block": block}


def _delta(index: int, delta: dict) -> dict:
    return {"type": "content_block_delta", "index": index, "delta": delta}


def _stop(index: int) -> dict:
    return {"type": "content_block_stop", "index": index}


END = [
    {
        "type": "message_delta",
        "delta": {"stop_reason": "tool_use", "stop_sequence": None},
        "usage": {"output_tokens": 5},
    },
    {"type": "message_stop"},
]
TOOL = {"type": "tool_use", "id": "toolu_1", "name": "Read", "input": {}}


def test_a_good_stream_assembles_to_its_message():
    checked = check_stream(
        _sse(
            START,
            {"type": "ping"},
            _block(0, {"type": "text", "text": ""}),
            _delta(0, {"type": "text_delta", "text": "Hi"}),
            _stop(0),
            _block(1, TOOL),
            _delta(1, {"type": "input_json_delta", "partial_json": '{"file_'}),
            _delta(1, {"type": "input_json_delta", "partial_json": 'path":"/a"}'}),
            _stop(1),
            *END,
        )
    )
    assert checked.problems == [] and checked.error is None
    assert checked.message["content"][0]["text"] == "Hi"
    assert checked.message["content"][1]["input"] == {"file_path": "/a"}


@pytest.mark.parametrize(
    "events, problem",
    [
        ([_block(1, TOOL), _stop(1), *END], "block index 1, expected 0"),
        (
            [_block(0, TOOL), _delta(0, {"type": "text_delta", "text": "x"}), _stop(0), *END],
            "text_delta inside a tool_use block",
        ),
        (
            [
                _block(0, TOOL),
                _delta(0, {"type": "input_json_delta", "partial_json": '{"a":'}),
                _stop(0),
                *END,
            ],
            "tool input is not JSON",
        ),
        ([_block(0, TOOL), *END], "block 0 never closed"),
        ([_block(0, TOOL), _stop(0), END[0]], "no message_stop"),
    ],
)
def test_protocol_breaks_are_reported(events, problem):
    checked = check_stream(_sse(START, *events))
    assert any(problem in p for p in checked.problems), checked.problems


def test_a_stream_ending_in_an_error_event_reports_the_error():
    error = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    checked = check_stream(_sse(START, _block(0, {"type": "text", "text": ""}), error))
    assert checked.problems == [] and checked.error == error["error"]
    assert check_stream(_sse(START, {"type": "error", "error": {"type": "nope"}})).problems


def test_error_bodies_must_have_anthropic_shape_and_status():
    body = {"type": "error", "error": {"type": "rate_limit_error", "message": "slow down"}}
    assert check_error(429, body) == []
    assert check_error(500, body) == ["rate_limit_error sent with status 500"]
    assert check_error(400, {"detail": "bad"})
