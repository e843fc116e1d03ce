"""Every upstream fault reaches the client as the error Anthropic's API would send.

One test per fault: upstream 401/402/403/429/500/502/503/529, a 200 carrying an error, a
timeout, a refused or reset connection, garbage, malformed JSON, and errors mid-stream.
Each says which upstream model failed and keeps what the upstream said.
"""

from __future__ import annotations

import anthropic
import httpx
import orjson
import pytest

from tests.support.raw_upstream import RawUpstream
from tests.support.upstream import Reply

USER = [{"role": "user", "content": "hi"}]
UPSTREAM_MODEL = "anthropic/claude-sonnet-4"  # what `big` maps to by default


def post(oas, body: dict, **kwargs) -> httpx.Response:
    return httpx.post(f"{oas.url}/v1/messages", json=body, timeout=30, **kwargs)


def assert_anthropic_error(response: httpx.Response, status: int, error_type: str) -> str:
    """The response is Anthropic's error shape with this status and type; returns the message."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["type"] == "error"
    assert body["error"]["type"] == error_type
    assert body["request_id"] == response.headers["request-id"]
    assert "Traceback" not in body["error"]["message"]
    return body["error"]["message"]


def sse_events(text: str) -> list[tuple[str, dict]]:
    events = []
    for block in text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.split("\n") if ": " in line)
        if "event" in lines:
            events.append((lines["event"], orjson.loads(lines["data"])))
    return events


@pytest.mark.parametrize(
    ("status", "error_type", "sdk_error"),
    [
        (400, "invalid_request_error", anthropic.BadRequestError),
        (401, "authentication_error", anthropic.AuthenticationError),
        (402, "billing_error", anthropic.APIStatusError),
        (403, "permission_error", anthropic.PermissionDeniedError),
        (404, "not_found_error", anthropic.NotFoundError),
        (429, "rate_limit_error", anthropic.RateLimitError),
        (500, "api_error", anthropic.InternalServerError),
        (502, "api_error", anthropic.InternalServerError),
        (529, "overloaded_error", anthropic.InternalServerError),
    ],
)
def test_upstream_status_becomes_the_anthropic_error(oas, upstream, status, error_type, sdk_error):
    upstream.queue(Reply(status=status, error={"code": status, "message": f"scripted {status}"}))
    with pytest.raises(sdk_error) as caught:
        oas.client().messages.create(model="big", max_tokens=10, messages=USER)
    assert caught.value.status_code == status
    assert caught.value.body["error"]["type"] == error_type
    message = caught.value.body["error"]["message"]
    assert f"scripted {status}" in message
    assert UPSTREAM_MODEL in message
    assert caught.value.response.headers["x-oas-upstream-model"] == UPSTREAM_MODEL


def test_upstream_402_keeps_openrouter_words_and_is_a_billing_error(oas, upstream):
    upstream.queue(
        Reply(
            status=402,
            error={
                "code": 402,
                "message": "Insufficient credits. Add more using https://openrouter.ai/credits",
            },
        )
    )
    message = assert_anthropic_error(
        post(oas, {"model": "big", "max_tokens": 5, "messages": USER}), 402, "billing_error"
    )
    assert "Insufficient credits" in message


def test_moderation_reasons_and_flagged_input_are_kept(oas, upstream):
    upstream.queue(
        Reply(
            status=403,
            error={
                "code": 403,
                "message": "Input was flagged",
                "metadata": {
                    "reasons": ["harassment", "violence"],
                    "flagged_input": "some bad words...",
                    "provider_name": "OpenAI",
                    "model_slug": "openai/gpt-4o",
                },
            },
        )
    )
    message = assert_anthropic_error(
        post(oas, {"model": "big", "max_tokens": 5, "messages": USER}), 403, "permission_error"
    )
    assert "Input was flagged" in message
    assert "harassment, violence" in message
    assert "some bad words" in message


def test_provider_raw_message_and_name_are_kept(oas, upstream):
    upstream.queue(
        Reply(
            status=400,
            error={
                "code": 400,
                "message": "Provider returned error",
                "metadata": {
                    "provider_name": "Anthropic",
                    "raw": '{"type":"error",'
                    '"error":{"message":"prompt is too long: 210000 tokens"}}',
                },
            },
        )
    )
    message = assert_anthropic_error(
        post(oas, {"model": "big", "max_tokens": 5, "messages": USER}), 400, "invalid_request_error"
    )
    assert "Provider returned error" in message
    assert "Anthropic said" in message and "prompt is too long" in message


def test_429_passes_retry_after_through(oas, upstream):
    upstream.queue(
        Reply(
            status=429,
            error={"code": 429, "message": "Rate limit exceeded"},
            headers={"retry-after": "17"},
        )
    )
    response = post(oas, {"model": "big", "max_tokens": 5, "messages": USER})
    assert "Rate limit exceeded" in assert_anthropic_error(response, 429, "rate_limit_error")
    assert response.headers["retry-after"] == "17"
    assert response.headers["x-should-retry"] == "true"


def test_503_no_provider_is_overloaded_529(oas, upstream):
    upstream.queue(
        Reply(
            status=503,
            error={
                "code": 503,
                "message": "No allowed providers are available for the selected model.",
            },
        )
    )
    message = assert_anthropic_error(
        post(oas, {"model": "big", "max_tokens": 5, "messages": USER}), 529, "overloaded_error"
    )
    assert "No allowed providers" in message


def test_error_in_a_200_answer_is_not_a_success(oas, upstream):
    upstream.queue(
        Reply(raw_body=orjson.dumps({"error": {"code": 502, "message": "provider hiccup"}}))
    )
    message = assert_anthropic_error(
        post(oas, {"model": "big", "max_tokens": 5, "messages": USER}), 502, "api_error"
    )
    assert "provider hiccup" in message and UPSTREAM_MODEL in message


def test_malformed_upstream_json_is_a_502(oas, upstream):
    upstream.queue(Reply(raw_body=b'{"choices": [ this is not json'))
    message = assert_anthropic_error(
        post(oas, {"model": "big", "max_tokens": 5, "messages": USER}), 502, "api_error"
    )
    assert "malformed JSON" in message and UPSTREAM_MODEL in message


def test_first_byte_timeout_is_a_504_naming_the_model(make_oas, upstream):
    oas = make_oas(first_byte_timeout=0.3)
    upstream.queue(Reply(text="too late", first_byte_delay=3))
    message = assert_anthropic_error(
        post(oas, {"model": "big", "max_tokens": 5, "messages": USER}), 504, "timeout_error"
    )
    assert "0.3s" in message and UPSTREAM_MODEL in message


def test_stream_first_byte_timeout_is_an_http_error_not_a_broken_stream(make_oas, upstream):
    oas = make_oas(first_byte_timeout=0.3)
    upstream.queue(Reply(text="too late", first_byte_delay=3))
    response = post(oas, {"model": "big", "max_tokens": 5, "messages": USER, "stream": True})
    assert "first chunk" in assert_anthropic_error(response, 504, "timeout_error")


def test_idle_upstream_mid_stream_ends_the_stream_with_an_error_event(make_oas, upstream):
    oas = make_oas(read_timeout=0.3)
    upstream.queue(Reply(text="one two three four", chunk_size=4, stall=5))
    response = post(oas, {"model": "big", "max_tokens": 5, "messages": USER, "stream": True})
    assert response.status_code == 200
    events = sse_events(response.text)
    names = [name for name, _ in events]
    assert names[0] == "message_start" and "content_block_delta" in names
    assert names[-1] == "error" and "message_stop" not in names
    error = events[-1][1]["error"]
    assert error["type"] == "timeout_error"
    assert UPSTREAM_MODEL in error["message"]


def test_a_slow_but_steady_stream_outlasts_the_idle_timeout(make_oas, upstream):
    # the idle timeout bounds each wait between reads, not the whole answer: chunks 0.2 s
    # apart under a 0.5 s idle timeout keep the stream alive for ~1.6 s
    oas = make_oas(read_timeout=0.5)
    upstream.queue(Reply(text="one two three four five six seven", chunk_size=4, delay=0.2))
    response = post(oas, {"model": "big", "max_tokens": 50, "messages": USER, "stream": True})
    assert response.status_code == 200
    events = sse_events(response.text)
    assert events[-1][0] == "message_stop"
    text = "".join(data["delta"]["text"] for name, data in events if name == "content_block_delta")
    assert text == "one two three four five six seven"


def test_unreachable_upstream_is_a_502_naming_the_model(make_oas, upstream):
    with RawUpstream("reset") as raw:
        port = raw.port
    oas = make_oas(openrouter_base_url=f"http://127.0.0.1:{port}/api/v1")  # nothing listens
    message = assert_anthropic_error(
        post(oas, {"model": "big", "max_tokens": 5, "messages": USER}), 502, "api_error"
    )
    assert "failed connecting" in message and "Cannot connect" in message
    assert UPSTREAM_MODEL in message


def test_connection_reset_before_the_answer_is_a_502(make_oas, upstream):
    with RawUpstream("reset") as raw:
        oas = make_oas(openrouter_base_url=raw.base_url)
        for stream in (False, True):
            response = post(
                oas, {"model": "big", "max_tokens": 5, "messages": USER, "stream": stream}
            )
            assert UPSTREAM_MODEL in assert_anthropic_error(response, 502, "api_error")
        assert raw.connections == 2


def test_upstream_that_is_not_http_is_a_502(make_oas, upstream):
    with RawUpstream("garbage") as raw:
        oas = make_oas(openrouter_base_url=raw.base_url)
        response = post(oas, {"model": "big", "max_tokens": 5, "messages": USER})
        assert UPSTREAM_MODEL in assert_anthropic_error(response, 502, "api_error")


def test_connection_reset_mid_stream_is_an_error_event(oas, upstream):
    upstream.queue(Reply(text="a b c d e f g h", chunk_size=2, drop_connection=True))
    response = post(oas, {"model": "big", "max_tokens": 5, "messages": USER, "stream": True})
    events = sse_events(response.text)
    assert events[0][0] == "message_start"
    assert events[-1][0] == "error"
    assert events[-1][1]["error"]["type"] == "api_error"
    assert "mid-answer" in events[-1][1]["error"]["message"]


def test_mid_stream_error_is_an_error_event_with_the_upstream_words(oas, upstream):
    upstream.queue(
        Reply(
            text="part one, part two",
            chunk_size=3,
            mid_stream_error={
                "code": 502,
                "message": "Provider disconnected",
                "metadata": {"provider_name": "Groq", "raw": "upstream connect error"},
            },
        )
    )
    with pytest.raises(anthropic.APIStatusError) as caught:
        with oas.client().messages.stream(model="big", max_tokens=20, messages=USER) as stream:
            for _ in stream:
                pass
    error = caught.value.body["error"]
    assert error["type"] == "api_error"
    assert "Provider disconnected" in error["message"]
    assert "Groq said: upstream connect error" in error["message"]
    assert UPSTREAM_MODEL in error["message"]


def test_malformed_chunk_mid_stream_is_an_error_event(oas, upstream):
    upstream.queue(Reply(text="abcdefghijkl", chunk_size=2, malformed_chunk=True))
    response = post(oas, {"model": "big", "max_tokens": 5, "messages": USER, "stream": True})
    events = sse_events(response.text)
    assert [n for n, _ in events].count("error") == 1
    assert events[-1][0] == "error"
    assert "malformed stream chunk" in events[-1][1]["error"]["message"]


def test_error_chunk_before_any_content_is_an_http_error(oas, upstream):
    # OpenRouter accepted the stream (200) but the provider failed before its first token:
    # nothing reached the client yet, so it gets a plain HTTP error it can retry.
    upstream.queue(
        Reply(
            text="x",
            chunk_size=1,
            mid_stream_error={"code": 429, "message": "Provider rate limited"},
        )
    )
    response = post(oas, {"model": "big", "max_tokens": 5, "messages": USER, "stream": True})
    assert "Provider rate limited" in assert_anthropic_error(response, 429, "rate_limit_error")
