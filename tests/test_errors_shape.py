"""Every response carries a `request-id`; every error is Anthropic-shaped, never a trace."""

from __future__ import annotations

import httpx
import pytest

import src.api.routes.messages as messages_route

USER = [{"role": "user", "content": "hi"}]


def assert_error(response: httpx.Response, status: int, error_type: str) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert body == {
        "type": "error",
        "error": {"type": error_type, "message": body["error"]["message"]},
        "request_id": response.headers["request-id"],
    }
    assert body["error"]["message"]
    return body


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("HEAD", "/"),
        ("GET", "/"),
        ("HEAD", "/api/hello"),
        ("GET", "/api/hello"),
        ("POST", "/api/event_logging/batch"),
        ("GET", "/health"),
    ],
)
def test_probes_answer_fast_with_a_request_id(oas, method, path):
    response = httpx.request(method, f"{oas.url}{path}", json=[] if method == "POST" else None)
    assert response.status_code == 200
    assert response.headers["request-id"].startswith("req_")


def test_every_request_gets_its_own_id(oas):
    ids = {httpx.get(f"{oas.url}/health").headers["request-id"] for _ in range(5)}
    assert len(ids) == 5


def test_unknown_path_is_a_404_not_found_error(oas):
    assert_error(httpx.get(f"{oas.url}/v1/nothing-here"), 404, "not_found_error")


def test_wrong_method_is_a_405_shaped_error(oas):
    body = assert_error(httpx.get(f"{oas.url}/v1/messages"), 405, "invalid_request_error")
    assert "GET" in body["error"]["message"]


def test_unexpected_failure_is_a_500_api_error_with_request_id_and_no_trace(oas, monkeypatch):
    async def broken(*args, **kwargs):
        raise RuntimeError("secret internals /home/user/src/file.py line 3")

    monkeypatch.setattr(messages_route, "read_json", broken)
    response = httpx.post(f"{oas.url}/v1/messages", json={})
    body = assert_error(response, 500, "api_error")
    assert body["error"]["message"] == "Internal error: RuntimeError"
    assert response.headers["x-should-retry"] == "true"


@pytest.mark.parametrize("content", [b"", b"   ", b"{not json", b"[1, 2", b"\xff\xfe\x00"])
def test_unreadable_body_is_a_400(oas, content):
    response = httpx.post(
        f"{oas.url}/v1/messages", content=content, headers={"content-type": "application/json"}
    )
    assert_error(response, 400, "invalid_request_error")


@pytest.mark.parametrize(
    "body",
    [
        [],
        "a string",
        42,
        None,
        {},
        {"model": "big"},
        {"model": "big", "max_tokens": 10},
        {"model": "big", "max_tokens": 0, "messages": USER},
        {"model": "", "max_tokens": 10, "messages": USER},
        {"model": "big", "max_tokens": 10, "messages": []},
        {"model": "big", "max_tokens": 10, "messages": [{"role": "robot", "content": "x"}]},
        {"model": "big", "max_tokens": 10, "messages": USER, "temperature": 7},
    ],
)
def test_invalid_request_is_a_400_naming_the_problem(oas, upstream, body):
    response = httpx.post(f"{oas.url}/v1/messages", json=body)
    assert_error(response, 400, "invalid_request_error")
    assert upstream.requests == []  # nothing invalid goes upstream


def test_body_over_the_limit_is_a_413_request_too_large(make_oas, upstream):
    oas = make_oas(max_body_bytes=2000)
    big = {"model": "big", "max_tokens": 10, "messages": [{"role": "user", "content": "x" * 5000}]}
    body = assert_error(httpx.post(f"{oas.url}/v1/messages", json=big), 413, "request_too_large")
    assert "2000 bytes" in body["error"]["message"]

    def chunks():  # no content-length: the limit holds while reading
        yield b'{"model": "big", "max_tokens": 10, "messages": [{"role": "user", "content": "'
        for _ in range(10):
            yield b"y" * 500
        yield b'"}]}'

    assert_error(httpx.post(f"{oas.url}/v1/messages", content=chunks()), 413, "request_too_large")
    assert upstream.requests == []
