"""A client that goes away mid-stream stops the upstream request at once, frees its slot,
and its flow run ends as cancelled."""

from __future__ import annotations

import socket
import time

import httpx
import pytest

from tests.support.prefect_api import PrefectReader
from tests.support.upstream import Reply

USER = [{"role": "user", "content": "tell me a long story"}]
STREAM = {"model": "big", "max_tokens": 1000, "messages": USER, "stream": True}


def wait_for(condition, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


def read_until_first_text_then_hang_up(url: str) -> str:
    """Stream, read up to the first text delta, then close the connection."""
    with httpx.Client(timeout=30) as client:
        with client.stream("POST", f"{url}/v1/messages", json=STREAM) as response:
            assert response.status_code == 200
            for line in response.iter_lines():
                if "text_delta" in line:
                    return response.headers["request-id"]
    raise AssertionError("no text arrived")


def test_disconnect_closes_the_upstream_connection_at_once(make_oas, upstream):
    oas = make_oas(max_concurrency=1, max_queue=0)
    # 400 chunks 50 ms apart: the upstream would go on for 20 s if nobody stopped it.
    upstream.queue(Reply(text="word " * 400, chunk_size=5, delay=0.05))
    read_until_first_text_then_hang_up(oas.url)
    assert wait_for(lambda: upstream.disconnects == 1, timeout=5)
    # the slot is free again: with one slot and no queue, the next request still answers
    upstream.queue(Reply(text="next"))
    response = httpx.post(f"{oas.url}/v1/messages", json={**STREAM, "stream": False}, timeout=10)
    assert response.status_code == 200, response.text


def test_disconnect_of_a_client_that_stopped_reading_closes_the_upstream(make_oas, upstream):
    oas = make_oas()
    # A big answer (1000 chunks of 16 kB, 10 ms apart) fills the socket buffers in about
    # 3 s while the client reads nothing: the response is then blocked writing to the
    # client, not waiting on the upstream, when the client goes away. The client's
    # receive buffer is kept small (loopback would otherwise absorb 30 MB).
    upstream.queue(Reply(text="z" * 16_000_000, chunk_size=16000, delay=0.01))
    transport = httpx.HTTPTransport(socket_options=[(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)])
    with httpx.Client(timeout=30, transport=transport) as client:
        with client.stream("POST", f"{oas.url}/v1/messages", json=STREAM) as response:
            assert response.status_code == 200
            time.sleep(1.0)
    assert wait_for(lambda: upstream.disconnects == 1, timeout=5)


@pytest.mark.e2e
def test_disconnected_stream_is_a_cancelled_flow_run(tracked_oas, upstream, prefect_api):
    upstream.queue(Reply(text="word " * 400, chunk_size=5, delay=0.05))
    request_id = read_until_first_text_then_hang_up(tracked_oas.url)
    assert wait_for(lambda: upstream.disconnects == 1, timeout=5)
    reader = PrefectReader(prefect_api)
    run = reader.flow_run_for_request(request_id, state="CANCELLED")
    assert "client disconnected" in (run["state"]["message"] or "")
    tasks = {t["name"]: t["state_type"] for t in reader.task_runs(run["id"], expected=5)}
    assert tasks["call-upstream"] == "COMPLETED"
    assert tasks["stream-response"] == "CANCELLED"
    assert "record-usage" not in tasks


def test_disconnect_before_the_answer_cancels_the_upstream_request(make_oas):
    from tests.support.raw_upstream import RawUpstream

    with RawUpstream("silent") as raw:  # accepts, never answers
        oas = make_oas(openrouter_base_url=raw.base_url)
        for stream in (False, True):
            with pytest.raises(httpx.ReadTimeout):
                httpx.post(f"{oas.url}/v1/messages", timeout=0.5, json={**STREAM, "stream": stream})
        assert wait_for(lambda: raw.client_closed == 2, timeout=5)
        assert raw.connections == 2
