"""The official `anthropic` SDK against `oas` and the scripted upstream."""

from __future__ import annotations

import anthropic
import pytest

from tests.support.upstream import Reply, ToolCall

WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Weather for a city",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}


def test_create_returns_the_upstream_text(oas, upstream):
    upstream.queue(Reply(text="Hello from the model"))
    message = oas.client().messages.create(
        model="claude-sonnet-4-5-20250929",
        max_tokens=100,
        messages=[{"role": "user", "content": "Hi"}],
    )
    assert message.content[0].text == "Hello from the model"
    assert message.model == "claude-sonnet-4-5-20250929"
    assert message.stop_reason == "end_turn"
    assert message.id.startswith("msg_")
    assert message.usage.output_tokens > 0
    sent = upstream.requests[-1]
    assert sent["model"] == "anthropic/claude-sonnet-4"
    assert sent["messages"] == [{"role": "user", "content": "Hi"}]
    assert sent["max_tokens"] == 100


def test_stream_text_arrives_in_pieces_and_assembles(oas, upstream):
    upstream.queue(Reply(text="The quick brown fox jumps over the lazy dog", chunk_size=3))
    with oas.client().messages.stream(
        model="claude-3-5-haiku-20241022",
        max_tokens=50,
        messages=[{"role": "user", "content": "Say it"}],
    ) as stream:
        pieces = list(stream.text_stream)
        final = stream.get_final_message()
    assert len(pieces) > 5
    assert "".join(pieces) == "The quick brown fox jumps over the lazy dog"
    assert final.content[0].text == "The quick brown fox jumps over the lazy dog"
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens > 0
    assert upstream.requests[-1]["model"] == "anthropic/claude-3.7-sonnet"
    assert upstream.requests[-1]["stream"] is True


def test_system_temperature_and_stop_sequences_reach_upstream(oas, upstream):
    oas.client().messages.create(
        model="big",
        max_tokens=10,
        system="Be brief.",
        stop_sequences=["END"],
        messages=[{"role": "user", "content": "x"}],
        extra_body={"temperature": 0.2, "top_p": 0.9},  # SDK 2.x no longer names them
    )
    sent = upstream.requests[-1]
    assert sent["messages"][0] == {"role": "system", "content": "Be brief."}
    assert sent["temperature"] == 0.2 and sent["top_p"] == 0.9
    assert sent["stop"] == ["END"]


def test_tool_round_trip(oas, upstream):
    client = oas.client()
    upstream.queue(
        Reply(tool_calls=[ToolCall("get_weather", {"city": "Paris"})]),
        Reply(text="It is sunny in Paris."),
    )
    first = client.messages.create(
        model="claude-opus-4-1",
        max_tokens=200,
        tools=[WEATHER_TOOL],
        messages=[{"role": "user", "content": "Weather in Paris?"}],
    )
    assert first.stop_reason == "tool_use"
    call = next(b for b in first.content if b.type == "tool_use")
    assert call.name == "get_weather" and call.input == {"city": "Paris"}
    assert call.id.startswith("toolu_")
    assert upstream.requests[-1]["tools"][0]["function"]["name"] == "get_weather"

    second = client.messages.create(
        model="claude-opus-4-1",
        max_tokens=200,
        tools=[WEATHER_TOOL],
        messages=[
            {"role": "user", "content": "Weather in Paris?"},
            {"role": "assistant", "content": [b.model_dump() for b in first.content]},
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": call.id, "content": "22C, sunny"}
                ],
            },
        ],
    )
    assert second.content[0].text == "It is sunny in Paris."
    sent = upstream.requests[-1]["messages"]
    # The upstream gets its own call id back (scripted: call_0), paired with the result.
    assert sent[1]["tool_calls"][0]["id"] == "call_0"
    assert sent[1]["tool_calls"][0]["function"]["name"] == "get_weather"
    assert sent[2] == {"role": "tool", "tool_call_id": "call_0", "content": "22C, sunny"}


def test_streamed_tool_call_assembles_its_input(oas, upstream):
    upstream.queue(
        Reply(
            text="Checking.",
            tool_calls=[ToolCall("get_weather", {"city": "Reykjavík", "units": "metric"})],
        )
    )
    with oas.client().messages.stream(
        model="big",
        max_tokens=200,
        tools=[WEATHER_TOOL],
        messages=[{"role": "user", "content": "Weather?"}],
    ) as stream:
        final = stream.get_final_message()
    assert [b.type for b in final.content] == ["text", "tool_use"]
    assert final.content[1].input == {"city": "Reykjavík", "units": "metric"}
    assert final.stop_reason == "tool_use"


def test_upstream_error_becomes_the_matching_sdk_exception(oas, upstream):
    upstream.queue(
        Reply(
            status=429,
            error={"code": 429, "message": "Rate limit exceeded"},
            headers={"retry-after": "7"},
        )
    )
    with pytest.raises(anthropic.RateLimitError) as caught:
        oas.client().messages.create(
            model="big", max_tokens=10, messages=[{"role": "user", "content": "x"}]
        )
    assert caught.value.status_code == 429
    assert "Rate limit exceeded" in caught.value.message
    assert caught.value.response.headers["retry-after"] == "7"
    assert caught.value.body["error"]["type"] == "rate_limit_error"


def test_upstream_error_before_a_stream_is_an_http_error(oas, upstream):
    upstream.queue(Reply(status=401, error={"code": 401, "message": "No auth credentials found"}))
    with (
        pytest.raises(anthropic.AuthenticationError),
        oas.client().messages.stream(
            model="big", max_tokens=10, messages=[{"role": "user", "content": "x"}]
        ) as stream,
    ):
        stream.get_final_message()


async def test_async_client_streams_too(oas, upstream):
    upstream.queue(Reply(text="async works"))
    async with oas.async_client().messages.stream(
        model="small",
        max_tokens=10,
        messages=[{"role": "user", "content": "x"}],
    ) as stream:
        final = await stream.get_final_message()
    assert final.content[0].text == "async works"
