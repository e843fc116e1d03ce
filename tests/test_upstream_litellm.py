"""`OAS_UPSTREAM=litellm`: the same answers and the same errors through LiteLLM's client.

Through the anthropic SDK against the scripted upstream: text, tool calls and usage come
back as with the default backend; an upstream error keeps its type and status; and a 200
whose body is no answer (an HTML page, an empty stream) is a 502, never an empty success.
"""

from __future__ import annotations

import json

import anthropic
import pytest

from src.cli import main as oas_main
from tests.support.upstream import COSTED_USAGE, Reply, ToolCall

USER = [{"role": "user", "content": "What is 6 x 7?"}]
HTML = b"<!DOCTYPE html><html><body><h1>Please wait while we check your browser</h1></body></html>"
SIGNED = {
    "type": "reasoning.text",
    "text": "6 times 7 is 42.",
    "signature": "ErUBCkYIBxgCIkD-signature",
    "format": "anthropic-claude-v1",
}
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


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_a_thinking_blocks_signature_goes_back_upstream(oas, upstream, stream):
    """OpenRouter sends the signature in `reasoning_details` (in a chunk of its own when
    streaming); the next turn must carry it back, or the provider refuses the history."""
    upstream.queue(
        Reply(text="42", reasoning=SIGNED["text"], reasoning_details=[SIGNED]),
        Reply(text="You are welcome."),
    )
    thinking = {"type": "enabled", "budget_tokens": 1024}
    first = ask(oas, stream, thinking=thinking, max_tokens=2000)
    assert [b.type for b in first.content] == ["thinking", "text"]
    assert first.content[0].thinking == SIGNED["text"]

    history = [b.model_dump(exclude_none=True) for b in first.content]
    messages = [
        *USER,
        {"role": "assistant", "content": history},
        {"role": "user", "content": "Thanks"},
    ]
    ask(oas, stream, thinking=thinking, max_tokens=2000, messages=messages)
    details = upstream.requests[-1]["messages"][1]["reasoning_details"]
    assert [d.get("signature") for d in details] == [SIGNED["signature"]]


def test_a_stream_cut_short_ends_with_an_error_event(oas, upstream):
    upstream.queue(Reply(text="It is forty", no_finish_reason=True, no_done=True))
    with pytest.raises(anthropic.APIStatusError) as caught:
        ask(oas, stream=True)
    assert caught.value.body["error"]["type"] == "api_error"
    assert "cut short" in caught.value.body["error"]["message"]


def test_a_stream_with_done_but_no_finish_reason_is_an_answer(oas, upstream):
    upstream.queue(Reply(text="It is 42.", no_finish_reason=True))
    message = ask(oas, stream=True)
    assert message.content[0].text == "It is 42." and message.stop_reason == "end_turn"


def test_a_chunk_that_is_no_chunk_is_the_upstreams_fault(oas, upstream):
    upstream.queue(
        Reply(raw_body=b'data: {"unexpected": true}\n\n', content_type="text/event-stream")
    )
    with pytest.raises(anthropic.APIStatusError) as caught:
        ask(oas, stream=True)
    assert caught.value.status_code == 502
    assert caught.value.body["error"]["type"] == "api_error"


def test_a_streamed_answers_cost_reaches_the_ledger(oas, upstream, monkeypatch, capsys):
    upstream.queue(Reply(text="It is 42.", usage=COSTED_USAGE))
    ask(oas, stream=True)
    oas.runtime.services.spend.stop()  # writes what is pending
    monkeypatch.setenv("OAS_DATA_DIR", str(oas.settings.data_dir))
    assert oas_main(["usage", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["rows"]
    assert [(r["model"], r["cost"]) for r in rows] == [("anthropic/claude-sonnet-4", 0.0125)]


def test_an_error_mid_stream_is_an_error_event_with_the_upstreams_words(oas, upstream):
    error = {"code": 502, "message": "Provider disconnected"}
    upstream.queue(Reply(text="part one, part two", chunk_size=3, mid_stream_error=error))
    with pytest.raises(anthropic.APIStatusError) as caught:
        ask(oas, stream=True)
    assert caught.value.body["error"]["type"] == "api_error"
    assert "Provider disconnected" in caught.value.body["error"]["message"]
