"""A 200 from the upstream whose body is not what it says is an error, never an empty success.

The red team's finding: a stream whose upstream answered 200 with a body that was not
server-sent events came back as an empty `end_turn` and the run Completed. Now it is a 502
`api_error` before the first byte (or an `error` event after it) and the run is Failed;
a stream that ends without a `finish_reason` is tagged on its run. Through the anthropic
SDK, against the tracked `oas` and a real Prefect.
"""

from __future__ import annotations

import anthropic
import orjson
import pytest

from tests.support.prefect_api import PrefectReader
from tests.support.upstream import Reply

USER = [{"role": "user", "content": "hi"}]
UPSTREAM_MODEL = "anthropic/claude-sonnet-4"
HTML = b"<!DOCTYPE html><html><body><h1>Please wait while we check your browser</h1></body></html>"


def chunk(content: str, finish: str | None = None) -> bytes:
    data = {
        "id": "gen-1",
        "object": "chat.completion.chunk",
        "model": UPSTREAM_MODEL,
        "choices": [{"index": 0, "delta": {"content": content}, "finish_reason": finish}],
    }
    return b"data: " + orjson.dumps(data) + b"\n\n"


def ask(oas, stream: bool) -> anthropic.types.Message:
    client = oas.client()
    if not stream:
        return client.messages.create(model="big", max_tokens=20, messages=USER)
    with client.messages.stream(model="big", max_tokens=20, messages=USER) as events:
        for _ in events:
            pass
        return events.get_final_message()


def failed_run(oas, caught: pytest.ExceptionInfo[anthropic.APIStatusError]) -> dict:
    reader = PrefectReader(oas.settings.prefect_api_url)
    return reader.flow_run_for_request(caught.value.response.headers["request-id"], state="FAILED")


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_an_html_page_with_status_200_is_a_502_and_the_run_failed(tracked_oas, upstream, stream):
    upstream.queue(Reply(raw_body=HTML, content_type="text/html"))
    with pytest.raises(anthropic.InternalServerError) as caught:
        ask(tracked_oas, stream)
    assert caught.value.status_code == 502
    error = caught.value.body["error"]
    assert error["type"] == "api_error"
    assert "text/html" in error["message"] and UPSTREAM_MODEL in error["message"]
    assert "check your browser" in error["message"]  # what came, for the operator
    assert "error:api_error" in failed_run(tracked_oas, caught)["tags"]


def test_an_event_stream_that_is_html_is_a_502_before_the_first_byte(tracked_oas, upstream):
    upstream.queue(Reply(raw_body=HTML + b"\n"))  # labelled text/event-stream
    with pytest.raises(anthropic.InternalServerError) as caught:
        ask(tracked_oas, stream=True)
    assert caught.value.status_code == 502
    assert "not server-sent events" in caught.value.body["error"]["message"]
    assert "error:api_error" in failed_run(tracked_oas, caught)["tags"]


@pytest.mark.parametrize(
    "body",
    [b"", b": keep-alive\n\n", b"data: [DONE]\n\n"],
    ids=["empty", "comments-only", "done-only"],
)
def test_an_event_stream_without_a_chunk_is_a_502(oas, upstream, body):
    upstream.queue(Reply(raw_body=body))
    with pytest.raises(anthropic.InternalServerError) as caught:
        ask(oas, stream=True)
    assert caught.value.status_code == 502
    assert "without a single chunk" in caught.value.body["error"]["message"]


def test_garbage_after_the_answer_started_is_an_error_event(tracked_oas, upstream):
    upstream.queue(Reply(raw_body=chunk("Hello") + chunk(" there") + HTML + b"\n"))
    seen = ""
    client = tracked_oas.client()
    with (
        pytest.raises(anthropic.APIStatusError) as caught,
        client.messages.stream(model="big", max_tokens=20, messages=USER) as events,
    ):
        for event in events:
            if event.type == "text":
                seen += event.text
    assert seen == "Hello there"  # what came before is the client's
    assert caught.value.body["error"]["type"] == "api_error"
    assert "not server-sent events" in caught.value.body["error"]["message"]
    assert "error:api_error" in failed_run(tracked_oas, caught)["tags"]


def test_a_json_error_in_place_of_a_stream_is_the_upstream_error(oas, upstream):
    error = {"error": {"code": 429, "message": "Rate limit exceeded: slow down"}}
    upstream.queue(Reply(raw_body=orjson.dumps(error), content_type="application/json"))
    with pytest.raises(anthropic.RateLimitError) as caught:
        ask(oas, stream=True)
    assert "slow down" in caught.value.body["error"]["message"]


def test_a_stream_cut_before_its_finish_reason_and_done_is_an_error_event(tracked_oas, upstream):
    upstream.queue(Reply(text="half an ans", chunk_size=4, no_finish_reason=True, no_done=True))
    with pytest.raises(anthropic.APIStatusError) as caught:
        ask(tracked_oas, stream=True)
    assert caught.value.body["error"]["type"] == "api_error"
    assert "neither a finish_reason nor [DONE]" in caught.value.body["error"]["message"]
    assert "error:api_error" in failed_run(tracked_oas, caught)["tags"]


def test_done_without_a_finish_reason_ends_the_turn_and_tags_the_run(tracked_oas, upstream):
    upstream.queue(Reply(text="a whole answer", chunk_size=4, no_finish_reason=True))
    with tracked_oas.client().messages.stream(model="big", max_tokens=20, messages=USER) as events:
        message = events.get_final_message()
        request_id = events.response.headers["request-id"]
    assert message.content[0].text == "a whole answer"
    assert message.stop_reason == "end_turn"
    run = PrefectReader(tracked_oas.settings.prefect_api_url).flow_run_for_request(
        request_id, state="COMPLETED"
    )
    assert "no-finish-reason" in run["tags"]


def test_a_stream_with_a_finish_reason_but_no_done_is_complete(oas, upstream):
    upstream.queue(Reply(text="all of it", chunk_size=4, no_done=True))
    message = ask(oas, stream=True)
    assert message.content[0].text == "all of it" and message.stop_reason == "end_turn"


def test_a_whole_answer_without_a_finish_reason_is_tagged_too(tracked_oas, upstream):
    completion = {
        "id": "gen-1",
        "object": "chat.completion",
        "model": UPSTREAM_MODEL,
        "choices": [
            {
                "index": 0,
                "finish_reason": None,
                "message": {"role": "assistant", "content": "whole"},
            }
        ],
        "usage": {"prompt_tokens": 3, "completion_tokens": 1},
    }
    upstream.queue(Reply(raw_body=orjson.dumps(completion)))
    raw = tracked_oas.client().messages.with_raw_response.create(
        model="big", max_tokens=20, messages=USER
    )
    message = raw.parse()
    assert message.content[0].text == "whole" and message.stop_reason == "end_turn"
    run = PrefectReader(tracked_oas.settings.prefect_api_url).flow_run_for_request(
        raw.headers["request-id"], state="COMPLETED"
    )
    assert "no-finish-reason" in run["tags"]
