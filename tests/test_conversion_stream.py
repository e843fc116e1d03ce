"""StreamConverter and convert-response as plain functions.

Each stream is assembled with the anthropic SDK's own accumulator (the code behind
`messages.stream(...).get_final_message()`), which also parses tool input after every
`input_json_delta`, and compared with the non-stream conversion of the same answer.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest
from anthropic.lib.streaming._messages import accumulate_event
from anthropic.types import Message

from src.core.errors import AnthropicError
from src.core.metrics import metrics
from src.schemas.anthropic import MessagesRequest
from src.tasks.conversion.stream import StreamConverter, StreamOutcome
from src.tasks.conversion.thinking import ENVELOPE
from src.tasks.conversion.tool_ids import upstream_id_of
from tests.support.conversion import convert_stream, to_anthropic

WEATHER = {
    "name": "get_weather",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
        "required": ["city"],
    },
}


def request(**fields: Any) -> MessagesRequest:
    return MessagesRequest.model_validate(
        {
            "model": "claude-x",
            "max_tokens": 100,
            "tools": [WEATHER],
            "messages": [{"role": "user", "content": "x"}],
            **fields,
        }
    )


def events(data: bytes) -> list[dict[str, Any]]:
    out = []
    for frame in data.split(b"\n\n"):
        if not frame:
            continue
        name, payload = frame.split(b"\n", 1)
        assert name.startswith(b"event: ") and payload.startswith(b"data: ")
        event = orjson.loads(payload[6:])
        assert event["type"] == name[7:].decode()
        out.append(event)
    return out


def stream(
    chunks: list[dict[str, Any]], req: MessagesRequest | None = None
) -> tuple[list[dict], Any]:
    """The SSE events for these chunks and the message the SDK assembles from them."""
    converter = StreamConverter("claude-x", request=req)
    data = converter.start() + b"".join(converter.feed(c) for c in chunks) + converter.finish()
    evs = events(data)
    snapshot, bufs = None, {}
    for event in evs:
        if event["type"] != "ping":
            snapshot = accumulate_event(event=event, current_snapshot=snapshot, json_bufs=bufs)
    return evs, snapshot


def delta(finish: str | None = None, **fields: Any) -> dict[str, Any]:
    choice: dict[str, Any] = {"index": 0, "delta": fields, "finish_reason": finish}
    return {"choices": [choice]}


def completion(
    message: dict[str, Any], finish: str = "stop", usage: dict | None = None, **choice: Any
) -> dict[str, Any]:
    return {
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", **message},
                "finish_reason": finish,
                **choice,
            }
        ],
        "usage": usage or {"prompt_tokens": 10, "completion_tokens": 5},
    }


def comparable(message: dict[str, Any]) -> dict[str, Any]:
    """A message without its random ids (upstream ids inside tool ids are kept)."""
    content = [
        {**b, "id": upstream_id_of(b["id"])} if b["type"] == "tool_use" else b
        for b in message["content"]
    ]
    return {**message, "id": None, "content": content}


def same_answer(
    chunks: list[dict[str, Any]], whole: dict[str, Any], req: MessagesRequest | None = None
) -> dict:
    _, snapshot = stream(chunks, req)
    streamed = snapshot.model_dump(exclude_none=True)
    created = to_anthropic(whole, "claude-x", req)
    parsed = Message.model_validate(created).model_dump(exclude_none=True)
    assert comparable(streamed) == comparable(parsed)
    return created


# -- text --------------------------------------------------------------------------------


def test_text_stream_events_in_anthropic_order():
    evs, message = stream(
        [
            delta(role="assistant", content=""),
            delta(content="Hel"),
            delta(content="lo"),
            delta("stop"),
            {"choices": [], "usage": {"prompt_tokens": 7, "completion_tokens": 2}},
        ]
    )
    assert [e["type"] for e in evs] == [
        "message_start",
        "ping",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert evs[0]["message"]["id"].startswith("msg_")
    assert evs[2]["content_block"] == {"type": "text", "text": ""}
    assert evs[6]["delta"] == {"stop_reason": "end_turn", "stop_sequence": None}
    assert evs[6]["usage"]["output_tokens"] == 2 and evs[6]["usage"]["input_tokens"] == 7
    assert message.content[0].text == "Hello"


def test_text_stream_equals_the_whole_answer():
    same_answer(
        [delta(content="Héllo "), delta(content="wörld 👍"), delta(content="🏽"), delta("stop")],
        completion(
            {"content": "Héllo wörld 👍🏽"}, usage={"prompt_tokens": 10, "completion_tokens": 5}
        )
        | {"usage": None},
    )


def test_whitespace_before_a_tool_call_makes_no_empty_text_block():
    chunks = [
        delta(content="\n\n"),
        delta(
            tool_calls=[
                {
                    "index": 0,
                    "id": "c1",
                    "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'},
                }
            ]
        ),
        delta("tool_calls"),
    ]
    evs, message = stream(chunks, request())
    assert [b.type for b in message.content] == ["tool_use"]
    same_answer(
        chunks,
        completion(
            {
                "content": "\n\n",
                "tool_calls": [
                    {
                        "id": "c1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'},
                    }
                ],
            },
            "tool_calls",
        )
        | {"usage": None},
        request(),
    )


# -- tool calls --------------------------------------------------------------------------


def parallel_chunks(style: str) -> list[dict[str, Any]]:
    calls = [("c1", '{"city": "Paris"}'), ("c2", '{"city": "Tokyo", "days": 3}')]
    heads = [
        {
            "index": i,
            "id": cid,
            "type": "function",
            "function": {"name": "get_weather", "arguments": ""},
        }
        for i, (cid, _) in enumerate(calls)
    ]
    parts = [
        [{"index": i, "function": {"arguments": args[j : j + 5]}} for j in range(0, len(args), 5)]
        for i, (_, args) in enumerate(calls)
    ]
    if style == "sequential":
        order = [heads[0], *parts[0], heads[1], *parts[1]]
    elif style == "interleaved":
        order = (
            [heads[0], heads[1]]
            + [p for pair in zip(parts[0], parts[1], strict=False) for p in pair]
            + parts[0][len(parts[1]) :]
            + parts[1][len(parts[0]) :]
        )
    elif style == "same_index":
        order = [
            {**heads[0]},
            *parts[0],
            {**heads[1], "index": 0},
            *[{**p, "index": 0} for p in parts[1]],
        ]
    else:  # whole
        order = [
            {**h, "function": {"name": "get_weather", "arguments": a}}
            for h, (_, a) in zip(heads, calls, strict=True)
        ]
    return [
        delta(content="Checking both."),
        *[delta(tool_calls=[f]) for f in order],
        delta("tool_calls"),
    ]


@pytest.mark.parametrize("style", ["sequential", "interleaved", "same_index", "whole"])
def test_parallel_tool_calls_each_get_their_block(style):
    chunks = parallel_chunks(style)
    evs, message = stream(chunks, request())
    starts = [e for e in evs if e["type"] == "content_block_start"]
    assert [(e["index"], e["content_block"]["type"]) for e in starts] == [
        (0, "text"),
        (1, "tool_use"),
        (2, "tool_use"),
    ]
    assert [b.input for b in message.content[1:]] == [
        {"city": "Paris"},
        {"city": "Tokyo", "days": 3},
    ]
    ids = [b.id for b in message.content[1:]]
    assert len(set(ids)) == 2 and all(i.startswith("toolu_") for i in ids)
    assert [upstream_id_of(i) for i in ids] == ["c1", "c2"]
    assert message.stop_reason == "tool_use"
    whole = completion(
        {
            "content": "Checking both.",
            "tool_calls": [
                {
                    "id": "c1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                },
                {
                    "id": "c2",
                    "type": "function",
                    "function": {
                        "name": "get_weather",
                        "arguments": '{"city": "Tokyo", "days": 3}',
                    },
                },
            ],
        },
        "tool_calls",
    ) | {"usage": None}
    same_answer(chunks, whole, request())


def test_input_json_deltas_arrive_while_the_call_is_being_written():
    chunks = [
        delta(
            tool_calls=[
                {"index": 0, "id": "c1", "function": {"name": "get_weather", "arguments": ""}}
            ]
        ),
        delta(tool_calls=[{"index": 0, "function": {"arguments": '{"city": '}}]),
        delta(tool_calls=[{"index": 0, "function": {"arguments": '"Lima"}'}}]),
        delta("tool_calls"),
    ]
    evs, _ = stream(chunks, request())
    partials = [e["delta"]["partial_json"] for e in evs if e["type"] == "content_block_delta"]
    assert partials == ['{"city":', '"Lima"', "}"]


def test_missing_and_repeated_upstream_ids_still_give_unique_tool_ids():
    chunks = [
        delta(
            tool_calls=[
                {"index": 0, "function": {"name": "get_weather", "arguments": '{"city":"A"}'}}
            ]
        ),
        delta(
            tool_calls=[
                {
                    "index": 1,
                    "id": "dup",
                    "function": {"name": "get_weather", "arguments": '{"city":"B"}'},
                }
            ]
        ),
        delta(
            tool_calls=[
                {
                    "index": 2,
                    "id": "dup",
                    "function": {"name": "get_weather", "arguments": '{"city":"C"}'},
                }
            ]
        ),
        delta("tool_calls"),
    ]
    _, message = stream(chunks, request())
    ids = [b.id for b in message.content]
    assert len(set(ids)) == 3
    assert [upstream_id_of(i) for i in ids] == [None, "dup", None]


def test_broken_arguments_are_repaired_counted_and_identical_in_both_paths():
    before = metrics.tools["get_weather"].repaired
    raw = "{'city': 'Bergen', 'days': '2'}"
    chunks = [
        delta(
            tool_calls=[
                {"index": 0, "id": "c1", "function": {"name": "get_weather", "arguments": raw[:9]}}
            ]
        ),
        delta(tool_calls=[{"index": 0, "function": {"arguments": raw[9:]}}]),
        delta("tool_calls"),
    ]
    created = same_answer(
        chunks,
        completion(
            {
                "tool_calls": [
                    {
                        "id": "c1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": raw},
                    }
                ]
            },
            "tool_calls",
        )
        | {"usage": None},
        request(),
    )
    assert created["content"][0]["input"] == {"city": "Bergen", "days": 2}
    assert metrics.tools["get_weather"].repaired == before + 2  # once per path


def test_arguments_cut_off_by_max_tokens_still_parse():
    chunks = [
        delta(
            tool_calls=[
                {
                    "index": 0,
                    "id": "c1",
                    "function": {"name": "get_weather", "arguments": '{"city": "Reykj'},
                }
            ]
        ),
        delta("length"),
    ]
    _, message = stream(chunks, request())
    assert message.content[0].input == {"city": "Reykj"}
    assert message.stop_reason == "max_tokens"


# -- thinking ----------------------------------------------------------------------------


def reasoning_chunks() -> list[dict[str, Any]]:
    fmt = {"format": "anthropic-claude-v1"}
    return [
        delta(
            reasoning="Let me ",
            reasoning_details=[{"type": "reasoning.text", "text": "Let me ", "index": 0, **fmt}],
        ),
        delta(
            reasoning="check.",
            reasoning_details=[{"type": "reasoning.text", "text": "check.", "index": 0, **fmt}],
        ),
        delta(
            reasoning_details=[
                {"type": "reasoning.text", "signature": "sig-abc", "index": 0, **fmt}
            ]
        ),
        delta(
            reasoning_details=[
                {"type": "reasoning.encrypted", "data": "enc-xyz", "index": 1, **fmt}
            ]
        ),
        delta(content="I'll look it up."),
        delta(
            tool_calls=[
                {
                    "index": 0,
                    "id": "c1",
                    "function": {"name": "get_weather", "arguments": '{"city":"Rome"}'},
                }
            ]
        ),
        delta("tool_calls"),
    ]


def test_thinking_streams_as_thinking_and_signature_deltas_before_text_and_tools():
    evs, message = stream(reasoning_chunks(), request())
    kinds = [
        (e["type"], (e.get("content_block") or e.get("delta") or {}).get("type"))
        for e in evs
        if e["type"].startswith("content_block")
    ]
    assert kinds[:5] == [
        ("content_block_start", "thinking"),
        ("content_block_delta", "thinking_delta"),
        ("content_block_delta", "thinking_delta"),
        ("content_block_delta", "signature_delta"),
        ("content_block_stop", None),
    ]
    assert [b.type for b in message.content] == [
        "thinking",
        "redacted_thinking",
        "text",
        "tool_use",
    ]
    assert message.content[0].thinking == "Let me check."
    assert message.content[0].signature.startswith(ENVELOPE)
    assert message.content[1].data.startswith(ENVELOPE)


def test_thinking_and_tool_use_stream_equals_the_whole_answer():
    fmt = {"format": "anthropic-claude-v1"}
    whole = completion(
        {
            "reasoning": "Let me check.",
            "reasoning_details": [
                {
                    "type": "reasoning.text",
                    "text": "Let me check.",
                    "signature": "sig-abc",
                    "index": 0,
                    **fmt,
                },
                {"type": "reasoning.encrypted", "data": "enc-xyz", "index": 1, **fmt},
            ],
            "content": "I'll look it up.",
            "tool_calls": [
                {
                    "id": "c1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Rome"}'},
                }
            ],
        },
        "tool_calls",
    ) | {"usage": None}
    same_answer(reasoning_chunks(), whole, request())


def test_plain_reasoning_text_becomes_a_thinking_block_too():
    _, message = stream(
        [delta(reasoning="Hmm, "), delta(reasoning="ok."), delta(content="Done."), delta("stop")]
    )
    assert [(b.type, getattr(b, "thinking", None)) for b in message.content] == [
        ("thinking", "Hmm, ok."),
        ("text", None),
    ]
    assert message.content[0].signature


def test_summaries_are_thinking_blocks():
    _, message = stream(
        [
            delta(
                reasoning_details=[
                    {
                        "type": "reasoning.summary",
                        "summary": "Plan: A then B.",
                        "format": "openai-responses-v1",
                        "index": 0,
                    }
                ]
            ),
            delta(
                reasoning_details=[
                    {
                        "type": "reasoning.encrypted",
                        "data": "gAAA",
                        "index": 1,
                        "format": "openai-responses-v1",
                    }
                ]
            ),
            delta(content="A."),
            delta("stop"),
        ]
    )
    assert [b.type for b in message.content] == ["thinking", "redacted_thinking", "text"]
    assert message.content[0].thinking == "Plan: A then B."


def test_display_omitted_keeps_the_signature_but_not_the_text():
    req = request(thinking={"type": "enabled", "budget_tokens": 1024, "display": "omitted"})
    evs, message = stream(reasoning_chunks(), req)
    assert not [e for e in evs if e.get("delta", {}).get("type") == "thinking_delta"]
    assert message.content[0].thinking == "" and message.content[0].signature.startswith(ENVELOPE)


# -- stop reasons, usage, errors -----------------------------------------------------------


@pytest.mark.parametrize(
    "finish, choice, stops, expected",
    [
        ("stop", {}, None, ("end_turn", None)),
        ("length", {}, None, ("max_tokens", None)),
        ("content_filter", {}, None, ("refusal", None)),
        ("stop", {"native_finish_reason": "SAFETY"}, None, ("refusal", None)),
        ("stop", {"native_finish_reason": "stop_sequence"}, ["###"], ("stop_sequence", "###")),
        (
            "stop",
            {"native_finish_reason": "stop_sequence"},
            ["###", "END"],
            ("stop_sequence", None),
        ),
        ("stop", {"stop_reason": "END"}, ["###", "END"], ("stop_sequence", "END")),  # vLLM family
        ("stop", {"matched_stop": "###"}, ["###", "END"], ("stop_sequence", "###")),  # SGLang
        (
            "stop",
            {"stop_reason": 151643},
            ["###"],
            ("end_turn", None),
        ),  # a stop token, not a sequence
        (
            "stop",
            {"native_finish_reason": "model_context_window_exceeded"},
            None,
            ("model_context_window_exceeded", None),
        ),
    ],
)
def test_stop_reason_and_sequence_in_both_paths(finish, choice, stops, expected):
    req = request(stop_sequences=stops) if stops else request()
    chunk = {"choices": [{"index": 0, "delta": {}, "finish_reason": finish, **choice}]}
    _, message = stream([delta(content="Answer"), chunk], req)
    assert (message.stop_reason, message.stop_sequence) == expected
    created = to_anthropic(completion({"content": "Answer"}, finish, **choice), "claude-x", req)
    assert (created["stop_reason"], created["stop_sequence"]) == expected


def test_a_refusal_is_text_with_stop_reason_refusal():
    created = to_anthropic(
        completion({"content": None, "refusal": "I can't help with that."}, "content_filter"), "m"
    )
    assert created["content"] == [{"type": "text", "text": "I can't help with that."}]
    assert created["stop_reason"] == "refusal"


def test_usage_separates_cached_input_as_anthropic_does():
    usage = {
        "prompt_tokens": 1000,
        "completion_tokens": 50,
        "cost": 0.01,
        "prompt_tokens_details": {"cached_tokens": 600, "cache_write_tokens": 300},
    }
    created = to_anthropic(completion({"content": "x"}, usage=usage), "m")
    assert created["usage"] == {
        "input_tokens": 100,
        "output_tokens": 50,
        "cache_read_input_tokens": 600,
        "cache_creation_input_tokens": 300,
    }


def test_unique_message_ids():
    assert len({to_anthropic(completion({"content": "x"}), "m")["id"] for _ in range(20)}) == 20


def test_an_upstream_error_mid_stream_is_an_error_event_then_the_end():
    async def chunks():
        yield delta(content="partial ")
        yield {
            "error": {"code": 502, "message": "Provider disconnected"},
            "choices": [{"index": 0, "delta": {"content": ""}, "finish_reason": "error"}],
        }
        yield delta(content="never sent")

    async def collect() -> list[bytes]:
        out = []
        with pytest.raises(AnthropicError):
            async for data in convert_stream(chunks(), "m", StreamOutcome()):
                out.append(data)
        return out

    evs = events(b"".join(asyncio.run(collect())))
    assert evs[-1] == {
        "type": "error",
        "error": {"type": "api_error", "message": "Provider disconnected"},
    }
    assert "message_stop" not in [e["type"] for e in evs]


def test_an_error_body_instead_of_a_completion_is_an_anthropic_error():
    with pytest.raises(AnthropicError) as caught:
        to_anthropic({"error": {"code": 429, "message": "slow down"}}, "m")
    assert caught.value.error_type == "rate_limit_error"
