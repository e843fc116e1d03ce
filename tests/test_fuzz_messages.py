"""Property tests: whatever a client sends, the answer is a message, a well-formed stream,
or an Anthropic-shaped 4xx error; never a 5xx, never a hang, never a stack trace.

Bounded: a fixed number of examples per property, every request with a 10 s timeout.
"""

from __future__ import annotations

import httpx
import orjson
import pytest
from hypothesis import HealthCheck, given, settings

from tests.strategies import anything, broken_requests, valid_requests
from tests.support.upstream import Reply

FUZZ = settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture(scope="module")
def client(oas, upstream_server):
    # A fixed answer whatever was asked: the scripted echo reads the last message, which
    # fuzzed requests need not have in any particular shape.
    upstream_server.reset()
    upstream_server.default = lambda body: Reply(text="fuzzed", chunk_size=2)
    with httpx.Client(base_url=oas.url, timeout=10) as http:
        yield http
    upstream_server.reset()


def assert_shaped_error(response: httpx.Response) -> None:
    assert 400 <= response.status_code < 500, (response.status_code, response.text)
    body = response.json()
    assert body["type"] == "error"
    assert set(body["error"]) == {"type", "message"}
    assert body["error"]["type"] in {
        "invalid_request_error",
        "request_too_large",
        "not_found_error",
        "authentication_error",
    }
    assert body["request_id"] == response.headers["request-id"]
    assert "Traceback" not in response.text and 'File "' not in response.text


def assert_answer(response: httpx.Response, stream: bool) -> None:
    assert response.status_code == 200, response.text
    assert response.headers["request-id"]
    if not stream:
        message = response.json()
        assert message["type"] == "message" and message["role"] == "assistant"
        assert message["stop_reason"] in {"end_turn", "max_tokens", "stop_sequence", "tool_use"}
        return
    events = [block.split("\n", 1) for block in response.text.strip().split("\n\n")]
    names = [e[0].removeprefix("event: ") for e in events]
    assert names[0] == "message_start" and names[-1] == "message_stop", names
    for _, data in events:
        orjson.loads(data.removeprefix("data: "))


@FUZZ
@given(request=valid_requests())
def test_valid_requests_are_answered(client, upstream_server, request):
    before = len(upstream_server.requests)
    response = client.post("/v1/messages", json=request)
    assert_answer(response, bool(request.get("stream")))
    assert len(upstream_server.requests) == before + 1
    sent = upstream_server.requests[-1]
    assert sent["messages"] and sent["max_tokens"] == request["max_tokens"]


@FUZZ
@given(request=broken_requests())
def test_broken_requests_get_a_shaped_400_and_never_reach_upstream(
    client, upstream_server, request
):
    before = len(upstream_server.requests)
    response = client.post("/v1/messages", json=request)
    assert_shaped_error(response)
    assert response.status_code == 400
    assert len(upstream_server.requests) == before


@FUZZ
@given(request=anything())
def test_anything_is_an_answer_or_a_shaped_4xx(client, request):
    response = client.post("/v1/messages", json=request)
    if response.status_code == 200:
        assert_answer(response, response.headers["content-type"].startswith("text/event-stream"))
    else:
        assert_shaped_error(response)


@settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(raw=__import__("hypothesis").strategies.binary(max_size=300))
def test_arbitrary_bytes_are_a_shaped_400(client, raw):
    response = client.post(
        "/v1/messages", content=raw, headers={"content-type": "application/json"}
    )
    if response.status_code != 200:  # (a few byte strings are valid requests after all)
        assert_shaped_error(response)
