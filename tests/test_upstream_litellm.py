"""`OAS_UPSTREAM=litellm`: the same answers and the same errors through LiteLLM's client.

Through the anthropic SDK against the scripted upstream: text, tool calls and usage come
back as with the default backend; an upstream error keeps its type and status; and a 200
whose body is no answer (an HTML page, an empty stream) is a 502, never an empty success.
"""

from __future__ import annotations

import anthropic
import pytest

from tests.support.upstream import Reply, ToolCall

USER = [{"role": "user", "content": "What is 6 x 7?"}]
HTML = b"<!DOCTYPE html><html><body><h1>Please wait while we check your browser</h1></body></html>"
WEATHER = {
    "name": "get_weather",
    "description": "The weather in a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
}


@pytest.fixture
def oas(make_oas, monkeypatch):
    monkeypatch.setenv("OAS_UPSTREAM", "litellm")
    instance = make_oas()
    assert instance.settings.upstream == "litellm"
    return instance


def ask(oas, stream: bool, **kwargs) -> anthropic.types.Message:
    client = oas.client()
    params = {"model": "big", "max_tokens": 50, "messages": USER, **kwargs}
    if not stream:
        return client.messages.create(**params)
    with client.messages.stream(**params) as events:
        for _ in events:
            pass
        return events.get_final_message()


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_an_answer_with_its_usage(oas, upstream, stream):
    usage = {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15}
    upstream.queue(Reply(text="It is 42.", usage=usage))
    message = ask(oas, stream)
    assert [block.text for block in message.content] == ["It is 42."]
    assert message.stop_reason == "end_turn"
    assert (message.usage.input_tokens, message.usage.output_tokens) == (12, 3)
    assert upstream.requests[-1]["model"] == "anthropic/claude-sonnet-4"


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_a_tool_call(oas, upstream, stream):
    upstream.queue(Reply(tool_calls=[ToolCall("get_weather", {"city": "Paris"}, id="call_1")]))
    message = ask(oas, stream, tools=[WEATHER])
    assert message.stop_reason == "tool_use"
    call = message.content[-1]
    assert (call.type, call.name, call.input) == ("tool_use", "get_weather", {"city": "Paris"})


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_an_upstream_error_keeps_its_type_and_status(oas, upstream, stream):
    upstream.queue(Reply(status=402, error={"code": 402, "message": "Insufficient credits"}))
    with pytest.raises(anthropic.APIStatusError) as caught:
        ask(oas, stream)
    assert caught.value.status_code == 402
    assert caught.value.body["error"]["type"] == "billing_error"
    assert "Insufficient credits" in caught.value.body["error"]["message"]


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_a_json_error_with_status_200_is_the_upstreams_error(oas, upstream, stream):
    error = b'{"error": {"code": 402, "message": "Insufficient credits"}}'
    upstream.queue(Reply(raw_body=error, content_type="application/json"))
    with pytest.raises(anthropic.APIStatusError) as caught:
        ask(oas, stream)
    assert caught.value.status_code == 402


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_an_html_page_with_status_200_is_a_502(oas, upstream, stream):
    upstream.queue(Reply(raw_body=HTML, content_type="text/html"))
    with pytest.raises(anthropic.InternalServerError) as caught:
        ask(oas, stream)
    assert caught.value.status_code == 502
    error = caught.value.body["error"]
    assert error["type"] == "api_error" and "anthropic/claude-sonnet-4" in error["message"]
    assert ("text/html" if stream else "check your browser") in error["message"]


@pytest.mark.parametrize("body", [b"", HTML], ids=["empty", "html"])
def test_an_event_stream_without_a_chunk_is_a_502(oas, upstream, body):
    upstream.queue(Reply(raw_body=body, content_type="text/event-stream"))
    with pytest.raises(anthropic.InternalServerError) as caught:
        ask(oas, stream=True)
    assert caught.value.status_code == 502
    assert "without a single chunk" in caught.value.body["error"]["message"]
