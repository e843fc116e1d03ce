"""End to end with the anthropic SDK: `oas` answers as Anthropic does, stream or not.

Each scenario is scripted twice on the upstream, asked once with `messages.create` and
once with `messages.stream(...)`; the SDK must assemble the same message both times.
"""

from __future__ import annotations

import base64
import itertools
from typing import Any

import anthropic
import httpx
import orjson
import pytest

from src.core.metrics import metrics
from src.tasks.conversion.tool_ids import upstream_id_of
from tests.support.upstream import Reply, ToolCall

WEATHER = {
    "name": "get_weather",
    "description": "Weather for a city",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
        "required": ["city"],
    },
}
SIGNED = {
    "type": "reasoning.text",
    "text": "The user wants two cities. I'll call the tool twice.",
    "signature": "ErUBCkYIBxgCIkD-signature",
    "format": "anthropic-claude-v1",
}
UNICODE = "Grüße aus Köln — 東京も晴れ 👋🏽 ✓ Ωmega naïve café"

SCENARIOS: dict[str, Reply] = {
    "text": Reply(text="The quick brown fox jumps over the lazy dog.", chunk_size=5),
    "parallel tool calls": Reply(
        text="Checking both.",
        tool_calls=[
            ToolCall("get_weather", {"city": "Paris"}),
            ToolCall("get_weather", {"city": "Tokyo", "days": 3}),
        ],
    ),
    "thinking + tool use": Reply(
        reasoning=SIGNED["text"],
        reasoning_details=[SIGNED],
        text="Let me check.",
        tool_calls=[ToolCall("get_weather", {"city": "Oslo"})],
    ),
    "unicode split across chunks": Reply(
        text=UNICODE,
        chunk_size=1,
        write_size=3,
        split_pause=0.002,
        tool_calls=[ToolCall("get_weather", {"city": "Zürich ☀"})],
    ),
}


def comparable(message: anthropic.types.Message) -> dict[str, Any]:
    """The message without its random ids (the upstream id inside each tool id is kept)."""
    data = message.model_dump(exclude_none=True)
    data.pop("id")
    for block in data["content"]:
        if block["type"] == "tool_use":
            block["id"] = upstream_id_of(block["id"])
    return data


def ask(oas: Any, **extra: Any) -> dict[str, Any]:
    return {
        "model": "claude-sonnet-4-5",
        "max_tokens": 500,
        "tools": [WEATHER],
        "messages": [{"role": "user", "content": "Weather in Paris and Tokyo?"}],
        **extra,
    }


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_stream_and_create_assemble_the_same_message(oas, upstream, scenario):
    reply = SCENARIOS[scenario]
    upstream.queue(reply, reply)
    client = oas.client()
    created = client.messages.create(**ask(oas))
    with client.messages.stream(**ask(oas)) as stream:
        texts = list(stream.text_stream)
        streamed = stream.get_final_message()
    assert comparable(streamed) == comparable(created)
    assert "".join(texts) == "".join(b.text for b in created.content if b.type == "text")
    if reply.tool_calls:
        assert [b.input for b in created.content if b.type == "tool_use"] == [
            c.arguments for c in reply.tool_calls
        ]
        assert created.stop_reason == "tool_use"
    if scenario.startswith("unicode"):
        assert created.content[0].text == UNICODE
        assert len(texts) > 20
        assert upstream.split_characters > 5  # characters really did arrive in two reads


def test_thinking_comes_first_with_a_signature_that_goes_back_upstream(oas, upstream):
    reply = SCENARIOS["thinking + tool use"]
    upstream.queue(reply, Reply(text="Sunny in Oslo."))
    client = oas.client()
    with client.messages.stream(
        **ask(oas, thinking={"type": "enabled", "budget_tokens": 2000})
    ) as stream:
        kinds = [e.type for e in stream]
        first = stream.get_final_message()
    assert "thinking" in kinds and "signature" in kinds
    assert [b.type for b in first.content] == ["thinking", "text", "tool_use"]
    assert first.content[0].thinking == SIGNED["text"]
    assert upstream.requests[-1]["reasoning"] == {"max_tokens": 2000}

    call = first.content[2]
    client.messages.create(
        **ask(
            oas,
            messages=[
                {"role": "user", "content": "Weather in Oslo?"},
                {
                    "role": "assistant",
                    "content": [b.model_dump(exclude_none=True) for b in first.content],
                },
                {
                    "role": "user",
                    "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "12C"}],
                },
            ],
        )
    )
    sent = upstream.requests[-1]["messages"][1]
    assert sent["reasoning_details"] == [
        {
            "type": "reasoning.text",
            "text": SIGNED["text"],
            "signature": SIGNED["signature"],
            "format": "anthropic-claude-v1",
            "index": 0,
        }
    ]
    assert sent["tool_calls"][0]["id"] == "call_0"


def test_input_json_events_arrive_as_the_arguments_do(oas, upstream):
    upstream.queue(
        Reply(
            tool_calls=[ToolCall("get_weather", {"city": "Buenos Aires", "days": 10})], chunk_size=2
        )
    )
    with oas.client().messages.stream(**ask(oas)) as stream:
        events = [e for e in stream if e.type == "input_json"]
        final = stream.get_final_message()
    assert len(events) > 5
    assert events[0].snapshot == {}
    assert events[-1].snapshot == {"city": "Buenos Aires", "days": 10} == final.content[0].input


def test_broken_arguments_never_break_the_sdk_and_are_counted(oas, upstream):
    broken = "{'city': 'Lyon', 'days': '4'"  # single quotes, a quoted integer, cut off
    upstream.queue(
        Reply(tool_calls=[ToolCall("get_weather", broken)]),
        Reply(tool_calls=[ToolCall("get_weather", broken)]),
    )
    before = metrics.tools["get_weather"].repaired
    client = oas.client()
    created = client.messages.create(**ask(oas))
    with client.messages.stream(**ask(oas)) as stream:
        streamed = stream.get_final_message()
    assert created.content[0].input == streamed.content[0].input == {"city": "Lyon", "days": 4}
    assert metrics.tools["get_weather"].repaired == before + 2


def test_upstream_ids_repeated_every_turn_still_pair_with_their_results(oas, upstream):
    upstream.queue(
        Reply(tool_calls=[ToolCall("get_weather", {"city": "A"}, id="call_0")]),
        Reply(tool_calls=[ToolCall("get_weather", {"city": "B"}, id="call_0")]),
        Reply(text="done"),
    )
    client = oas.client()
    history: list[dict[str, Any]] = [{"role": "user", "content": "A then B"}]
    for _ in range(2):
        answer = client.messages.create(**ask(oas, messages=history))
        call = answer.content[0]
        history += [
            {"role": "assistant", "content": [call.model_dump(exclude_none=True)]},
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": call.id, "content": call.input["city"]}
                ],
            },
        ]
    client.messages.create(**ask(oas, messages=history))
    sent = upstream.requests[-1]["messages"]
    pairs = [
        (m["tool_calls"][0]["id"], n["tool_call_id"], n["content"])
        for m, n in itertools.pairwise(sent)
        if m.get("tool_calls")
    ]
    assert pairs[0] == ("call_0", "call_0", "A")
    assert pairs[1][0] == pairs[1][1] != "call_0" and pairs[1][2] == "B"


@pytest.mark.parametrize("stream", [False, True])
def test_the_matched_stop_sequence_is_reported(oas, upstream, stream):
    upstream.queue(Reply(text="Counting: 1, 2, 3", native_finish_reason="stop_sequence"))
    params = ask(oas, stop_sequences=["4"])
    if stream:
        with oas.client().messages.stream(**params) as s:
            message = s.get_final_message()
    else:
        message = oas.client().messages.create(**params)
    assert (message.stop_reason, message.stop_sequence) == ("stop_sequence", "4")
    assert upstream.requests[-1]["stop"] == ["4"]


def test_a_refusal_says_refusal(oas, upstream):
    upstream.queue(Reply(refusal="I can't help with that.", finish_reason="content_filter"))
    message = oas.client().messages.create(**ask(oas))
    assert message.stop_reason == "refusal"
    assert message.content[0].text == "I can't help with that."


def test_cache_usage_comes_back_in_anthropic_terms(oas, upstream):
    usage = {
        "prompt_tokens": 5000,
        "completion_tokens": 20,
        "cost": 0.002,
        "prompt_tokens_details": {"cached_tokens": 4000, "cache_write_tokens": 0},
    }
    upstream.queue(Reply(text="ok", usage=usage), Reply(text="ok", usage=usage))
    client = oas.client()
    created = client.messages.create(**ask(oas))
    with client.messages.stream(**ask(oas)) as stream:
        streamed = stream.get_final_message()
    for message in (created, streamed):
        assert (
            message.usage.input_tokens,
            message.usage.cache_read_input_tokens,
            message.usage.output_tokens,
        ) == (1000, 4000, 20)


def test_a_mid_stream_error_is_an_error_event_and_the_stream_ends(oas, upstream):
    upstream.queue(
        Reply(
            text="This answer will not finish",
            chunk_size=3,
            mid_stream_error={"code": 502, "message": "Provider returned error"},
        )
    )
    with httpx.stream(
        "POST",
        f"{oas.url}/v1/messages",
        json={**ask(oas), "stream": True},
        headers={"x-api-key": "k", "anthropic-version": "2023-06-01"},
        timeout=10,
    ) as response:
        body = response.read()
    frames = [f for f in body.split(b"\n\n") if f]
    assert frames[-1].startswith(b"event: error\n")
    message = orjson.loads(frames[-1].split(b"data: ", 1)[1])["error"]["message"]
    assert message == "Provider returned error [upstream model anthropic/claude-sonnet-4]"

    upstream.queue(
        Reply(
            text="This answer will not finish",
            chunk_size=3,
            mid_stream_error={"code": 502, "message": "Provider returned error"},
        )
    )
    with pytest.raises(anthropic.APIStatusError, match="Provider returned error"):
        with oas.client().messages.stream(**ask(oas)) as stream:
            stream.get_final_message()


def test_every_kind_of_content_reaches_the_upstream(oas, upstream):
    pdf = base64.b64encode(b"%PDF-1.4 tiny").decode()
    oas.client().messages.create(
        model="claude-sonnet-4-5",
        max_tokens=100,
        system=[{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
        messages=[
            {
                "role": "user",
                "content": [
                    {
                        "type": "document",
                        "title": "Spec",
                        "source": {"type": "base64", "media_type": "application/pdf", "data": pdf},
                    },
                    {
                        "type": "image",
                        "source": {"type": "url", "url": "https://example.com/a.png"},
                    },
                    {
                        "type": "search_result",
                        "source": "https://example.com/s",
                        "title": "S",
                        "content": [{"type": "text", "text": "found"}],
                    },
                    {"type": "text", "text": "Summarise.", "cache_control": {"type": "ephemeral"}},
                ],
            }
        ],
    )
    sent = upstream.requests[-1]
    assert sent["model"] == "anthropic/claude-sonnet-4"  # honours cache_control
    assert sent["messages"][0]["content"][0]["cache_control"] == {"type": "ephemeral"}
    parts = sent["messages"][1]["content"]
    assert [p["type"] for p in parts] == ["text", "file", "image_url", "text", "text"]
    assert parts[1]["file"] == {
        "filename": "Spec.pdf",
        "file_data": f"data:application/pdf;base64,{pdf}",
    }
    assert parts[4] == {
        "type": "text",
        "text": "Summarise.",
        "cache_control": {"type": "ephemeral"},
    }


def test_the_newest_sdk_request_fields_are_tolerated(oas, upstream):
    upstream.queue(Reply(text="fine"))
    message = oas.client().messages.create(
        model="claude-opus-4-5",
        max_tokens=100,
        messages=[{"role": "user", "content": "x"}],
        cache_control={"type": "ephemeral"},
        output_config={"effort": "medium"},
        speed="fast",
        inference_geo="us",
        diagnostics={"cache_miss_reason": True},
        service_tier="auto",
        thinking={"type": "adaptive"},
        metadata={"user_id": "u-1"},
        extra_body={"context_management": {"edits": []}, "a_field_from_next_month": True},
    )
    assert message.content[0].text == "fine"
    sent = upstream.requests[-1]
    assert sent["reasoning"] == {"effort": "medium"}
    assert sent["user"] == "u-1"
    assert "speed" not in sent and "a_field_from_next_month" not in sent
