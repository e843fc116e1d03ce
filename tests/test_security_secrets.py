"""The upstream key never leaves memory: a sentinel key is grepped for in everything a
tracked run leaves behind (responses, logs, flow runs, task runs, artifacts, payloads),
including when the upstream echoes it back in its errors."""

from __future__ import annotations

import io
import logging
import zlib
from pathlib import Path

import httpx
import orjson
import pytest

from tests.conftest import UPSTREAM_KEY
from tests.support.prefect_api import PrefectReader
from tests.support.upstream import Reply

pytestmark = pytest.mark.e2e

USER = [{"role": "user", "content": "hello"}]


@pytest.fixture
def captured_logs():
    """Every log line the process writes while the test runs, rendered as in production."""
    root = logging.getLogger()
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(root.handlers[0].formatter)
    levels = {name: logging.getLogger(name).level for name in ("", "httpx", "httpcore")}
    root.addHandler(handler)
    for name in levels:
        logging.getLogger(name).setLevel(logging.DEBUG)
    yield buffer
    root.removeHandler(handler)
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


def echo_key_in_error(upstream, status: int):
    """An upstream that answers with the Authorization header it got, as some do."""

    def script(body: dict) -> Reply:
        sent = upstream.headers[-1]["authorization"]
        return Reply(
            status=status,
            error={
                "code": status,
                "message": f"Incorrect API key provided: {sent.removeprefix('Bearer ')}",
                "metadata": {"raw": f"header was {sent}", "provider_name": "Echo"},
            },
        )

    return script


def stored_payload_text(root: Path) -> str:
    parts = []
    for path in root.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            try:
                data = zlib.decompress(data)
            except zlib.error:
                pass
            parts.append(data.decode("utf-8", "replace"))
    return "\n".join(parts)


def test_sentinel_key_is_nowhere(tracked_oas, upstream, prefect_api, captured_logs):
    upstream.queue(
        Reply(text="a normal answer"),
        echo_key_in_error(upstream, 401),
        Reply(
            text="stream then trouble",
            chunk_size=3,
            mid_stream_error={"code": 502, "message": f"provider saw key {UPSTREAM_KEY}"},
        ),
    )
    base = f"{tracked_oas.url}/v1/messages"
    responses = [
        httpx.post(base, json={"model": "big", "max_tokens": 5, "messages": USER}, timeout=30),
        httpx.post(base, json={"model": "big", "max_tokens": 5, "messages": USER}, timeout=30),
        httpx.post(
            base,
            json={"model": "big", "max_tokens": 5, "messages": USER, "stream": True},
            timeout=30,
        ),
    ]
    assert [r.status_code for r in responses] == [200, 401, 200]
    assert upstream.headers[0]["authorization"] == f"Bearer {UPSTREAM_KEY}"  # it was really sent
    assert "Incorrect API key provided: [redacted]" in responses[1].json()["error"]["message"]
    assert "[redacted]" in responses[2].text

    reader = PrefectReader(prefect_api)
    recorded = []
    for response, state in zip(responses, ["COMPLETED", "FAILED", "FAILED"], strict=True):
        run = reader.flow_run_for_request(response.headers["request-id"], state=state)
        recorded.append(orjson.dumps(run).decode())
        tasks = reader.task_runs(run["id"], expected=4)
        recorded.append(orjson.dumps(tasks).decode())
        recorded.append(orjson.dumps(reader.artifacts(run["id"])).decode())
    tracked_oas.runtime.recorder.flush()
    for response in responses[1:]:  # the failed runs' Logs tabs have the upstream's errors
        run = reader.flow_run_for_request(response.headers["request-id"])
        lines = reader.logs(run["id"], containing="request failed")
        assert any("request failed" in line["message"] for line in lines)
        recorded.append(orjson.dumps(lines).decode())

    everything = {
        "responses": "\n".join(f"{dict(r.headers)}\n{r.text}" for r in responses),
        "logs": captured_logs.getvalue(),
        "prefect": "\n".join(recorded),
        "payloads": stored_payload_text(tracked_oas.runtime.payloads.root),
    }
    assert "Incorrect API key" in everything["prefect"]  # the failure itself is recorded
    assert "a normal answer" not in everything["prefect"]  # (answers are not stored at all)
    assert everything["payloads"], "payloads were stored"
    assert responses[1].headers["request-id"] in everything["logs"], "logs were captured"
    secret_part = UPSTREAM_KEY.removeprefix("sk-or-v1-")
    for where, text in everything.items():
        assert secret_part not in text, f"the upstream key leaked into {where}"


def test_a_key_of_any_shape_is_masked_in_errors(make_oas, upstream):
    key = "custom-upstream-token-7f3a9c"  # not shaped like sk-...: masked because it is the key
    oas = make_oas(openrouter_api_key=key)
    upstream.queue(echo_key_in_error(upstream, 403))
    response = httpx.post(
        f"{oas.url}/v1/messages",
        timeout=30,
        json={"model": "big", "max_tokens": 5, "messages": USER},
    )
    assert response.status_code == 403
    assert key not in response.text
    assert "[redacted]" in response.json()["error"]["message"]
