"""Slow or silent clients cannot starve `oas`: the red team's slowloris, against the real
server (uvicorn with the config `oas serve` uses).

Connections that send nothing, or half a request line, are closed after OAS_HEADER_TIMEOUT;
a body that trickles is cut after OAS_BODY_TIMEOUT; idle keep-alive connections close after
OAS_KEEP_ALIVE_TIMEOUT; beyond OAS_MAX_CONNECTIONS a new connection gets 529 at once; and
`/health` answers while a thousand idle connections are open. Loopback only, bounded in
count and time.
"""

from __future__ import annotations

import select
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

import anthropic
import httpx
import orjson
import pytest

from src.api.http_server import raise_open_files_limit

HALF_REQUEST_LINE = b"POST /v1/mess"


def _address(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or 80


@contextmanager
def connections(url: str, count: int, first_bytes: bytes = b"") -> Iterator[list[socket.socket]]:
    """`count` connections to `url` that send `first_bytes` (maybe nothing) and then wait."""
    opened: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.create_connection(_address(url), timeout=10)
            if first_bytes:
                sock.sendall(first_bytes)
            opened.append(sock)
        yield opened
    finally:
        for sock in opened:
            sock.close()


def read_until_closed(sock: socket.socket, within: float = 20.0) -> bytes:
    """Everything the server sends until it closes the connection (fails after `within`)."""
    sock.settimeout(within)
    data = b""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk
    raise AssertionError(f"the server kept the connection open past {within}s")


def error_of(response: bytes) -> tuple[int, str]:
    head, _, body = response.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, orjson.loads(body)["error"]["type"]


def still_open(sockets: list[socket.socket]) -> int:
    """How many of `sockets` the server has neither answered nor closed."""
    poll = select.poll()
    for sock in sockets:
        poll.register(sock, select.POLLIN)
    return len(sockets) - len(poll.poll(0))


@pytest.fixture(autouse=True)
def enough_open_files() -> None:
    # Both ends of every connection live in this process; `oas serve` raises its own too.
    raise_open_files_limit()


def test_health_answers_while_a_thousand_connections_sit_idle(make_oas) -> None:
    oas = make_oas(header_timeout=120)
    with connections(oas.url, 1000) as idle, connections(oas.url, 50, HALF_REQUEST_LINE) as half:
        started = time.process_time()
        response = httpx.get(f"{oas.url}/health", timeout=10)
        assert response.status_code == 200
        assert still_open(idle + half) == 1050  # they were all open while /health answered
        assert time.process_time() - started < 5  # no busy work per idle connection


def test_silent_and_half_sent_requests_are_closed_after_the_header_timeout(make_oas) -> None:
    oas = make_oas(header_timeout=1)
    with connections(oas.url, 50) as silent, connections(oas.url, 50, HALF_REQUEST_LINE) as half:
        for sock in silent:
            assert read_until_closed(sock) == b""  # it said nothing: closed without a word
        for sock in half:
            assert error_of(read_until_closed(sock)) == (408, "timeout_error")
    # and the server answers as before
    assert httpx.get(f"{oas.url}/health", timeout=10).status_code == 200


def test_a_keep_alive_connection_gets_the_same_deadline_for_its_next_request(make_oas) -> None:
    oas = make_oas(header_timeout=1, keep_alive_timeout=30)
    with connections(oas.url, 1, b"GET /health HTTP/1.1\r\nhost: oas\r\n\r\n") as (sock,):
        sock.settimeout(10)
        assert sock.recv(65536).startswith(b"HTTP/1.1 200")
        sock.sendall(b"GET /hea")  # the next request never finishes its line
        assert error_of(read_until_closed(sock)) == (408, "timeout_error")


def test_idle_keep_alive_connections_are_closed(make_oas) -> None:
    oas = make_oas(keep_alive_timeout=1)
    with connections(oas.url, 1, b"GET /health HTTP/1.1\r\nhost: oas\r\n\r\n") as (sock,):
        assert b"200 OK" in read_until_closed(sock)


def test_a_trickled_body_is_cut_after_the_body_timeout(make_oas) -> None:
    oas = make_oas(body_timeout=1)
    head = (
        b"POST /v1/messages HTTP/1.1\r\nhost: oas\r\ncontent-type: application/json\r\n"
        b"content-length: 100000\r\n\r\n{"
    )
    with connections(oas.url, 1, head) as (sock,):
        deadline = time.monotonic() + 20
        answer = b""
        sock.settimeout(0.3)
        while time.monotonic() < deadline:  # a byte now and then: never idle, never done
            try:
                sock.sendall(b" ")
                chunk = sock.recv(65536)
            except TimeoutError:
                continue
            except (BrokenPipeError, ConnectionResetError):
                break
            if not chunk:
                break
            answer += chunk
        assert error_of(answer) == (408, "timeout_error")


def test_connections_beyond_the_cap_are_refused_with_529(make_oas) -> None:
    oas = make_oas(max_connections=20)
    with connections(oas.url, 20) as idle:
        client = anthropic.Anthropic(base_url=oas.url, api_key="k", max_retries=0)
        with pytest.raises(anthropic.APIStatusError) as refused:
            client.messages.create(
                model="big", max_tokens=5, messages=[{"role": "user", "content": "hi"}]
            )
        assert refused.value.status_code == 529
        assert refused.value.body["error"]["type"] == "overloaded_error"
        assert refused.value.response.headers["retry-after"] == "1"
        assert still_open(idle) == 20  # the connections already in are untouched
    deadline = time.monotonic() + 10  # once they are gone, a new one is served
    while httpx.get(f"{oas.url}/health", timeout=10).status_code != 200:
        assert time.monotonic() < deadline
        time.sleep(0.1)


def test_the_cap_fits_the_open_files_limit(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    """With a low open-files limit that cannot be raised, fewer connections are let in than
    OAS_MAX_CONNECTIONS asks: each may need an upstream connection, and files are needed too."""
    import resource

    from src.api.http_server import connection_limits
    from src.core.settings import Settings

    settings = Settings(_env_file=None, data_dir=tmp_path, max_connections=2048)  # type: ignore[call-arg]
    monkeypatch.setattr(resource, "getrlimit", lambda which: (1024, 1024))
    assert connection_limits(settings).max_connections == (1024 - 256) // 2
    monkeypatch.setattr(resource, "getrlimit", lambda which: (65536, 65536))
    assert connection_limits(settings).max_connections == 2048


def test_a_pipelined_half_request_waits_for_the_answer_before_its_deadline(
    make_oas, upstream
) -> None:
    """A request line begun while a stream is still going out does not cut into it."""
    from tests.support.upstream import Reply

    oas = make_oas(header_timeout=1)
    upstream.queue(Reply(text="one two three four five six", chunk_size=4, delay=0.4))
    body = orjson.dumps(
        {
            "model": "big",
            "max_tokens": 50,
            "stream": True,
            "messages": [{"role": "user", "content": "count"}],
        }
    )
    request = (
        b"POST /v1/messages HTTP/1.1\r\nhost: oas\r\ncontent-type: application/json\r\n"
        b"content-length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )
    with connections(oas.url, 1, request + b"GET /hea") as (sock,):
        answer = read_until_closed(sock, within=30)
    stream, _, after = answer.partition(b"event: message_stop")
    assert b'"text":"six"' in stream  # the whole stream came
    assert b"HTTP/1.1 408" in after  # then the half request got its 408


@pytest.mark.e2e
def test_oas_serve_outlasts_the_red_teams_slowloris(upstream, tmp_path) -> None:
    """The attack as it was run: 1,000 silent and 50 half-request-line connections against
    `oas serve` started with the usual soft limit of 1,024 open files. `/health` answers
    while they are all open, and the server closes them after the default header timeout."""
    from tests.support.serve_process import ServeProcess

    serve = ServeProcess(upstream.base_url, tmp_path, open_files=1024)
    try:
        with (
            connections(serve.url, 1000) as idle,
            connections(serve.url, 50, HALF_REQUEST_LINE) as half,
        ):
            assert httpx.get(f"{serve.url}/health", timeout=10).status_code == 200
            assert still_open(idle + half) == 1050
            for sock in idle:  # OAS_HEADER_TIMEOUT, 10 s by default
                assert read_until_closed(sock, within=60) == b""
            for sock in half:
                assert error_of(read_until_closed(sock, within=60)) == (408, "timeout_error")
        assert httpx.get(f"{serve.url}/health", timeout=10).status_code == 200
    finally:
        serve.stop()
