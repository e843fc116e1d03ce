"""GET /health (liveness) and GET /health/detailed (what an operator checks first)."""

from __future__ import annotations

import socket

import httpx
import orjson
import pytest

from src import __version__
from tests.conftest import UPSTREAM_KEY
from tests.support.upstream import Reply


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_health_is_instant_liveness_without_upstream_or_key(make_oas, upstream):
    instance = make_oas(api_keys=["client-key"])
    response = httpx.get(f"{instance.url}/health")
    assert response.status_code == 200 and response.json() == {"status": "ok"}
    assert upstream.models_requests == 0 and upstream.requests == []


def test_detailed_health_reports_version_upstream_tracking_and_mapping(make_oas, upstream):
    instance = make_oas(big_model="openai/gpt-4o", small_model="openai/gpt-4o-mini")
    instance.client().messages.create(
        model="small", max_tokens=10, messages=[{"role": "user", "content": "hi"}]
    )
    health = httpx.get(f"{instance.url}/health/detailed").json()
    assert health["status"] == "ok"
    assert health["version"] == __version__
    assert health["uptime_seconds"] >= 0
    assert health["upstream"]["reachable"] is True
    assert health["upstream"]["models"] == len(upstream.models)
    assert health["upstream"]["base_url"] == upstream.base_url
    assert health["prefect"]["tracking"] is False
    assert health["prefect"]["untracked"] == 1 and health["prefect"]["tracked"] == 0
    assert health["model_mapping"]["big"] == "openai/gpt-4o"
    assert health["model_mapping"]["claude-*haiku*"] == "openai/gpt-4o-mini"
    assert health["mcp_servers"] == []


def test_the_upstream_probe_is_cached(make_oas, upstream):
    instance = make_oas()
    for _ in range(3):
        assert httpx.get(f"{instance.url}/health/detailed").json()["upstream"]["reachable"]
    assert upstream.models_requests == 1


def test_an_unreachable_upstream_makes_detailed_health_degraded_not_an_error(make_oas):
    instance = make_oas(openrouter_base_url=f"http://127.0.0.1:{closed_port()}/api/v1")
    response = httpx.get(f"{instance.url}/health/detailed", timeout=30)
    assert response.status_code == 200
    health = response.json()
    assert health["status"] == "degraded"
    assert health["upstream"]["reachable"] is False
    assert health["upstream"]["error"] == "ConnectError"
    assert UPSTREAM_KEY not in response.text
    assert httpx.get(f"{instance.url}/health").json() == {"status": "ok"}


def test_an_upstream_that_refuses_the_key_is_reachable_with_its_error(make_oas, upstream):
    upstream.models_status = 401
    health = httpx.get(f"{make_oas().url}/health/detailed").json()
    assert health["upstream"]["reachable"] is True and health["upstream"]["error"] == "HTTP 401"
    assert health["status"] == "degraded"


def test_detailed_health_needs_a_client_key_when_keys_are_set(make_oas):
    instance = make_oas(api_keys=["client-key"])
    assert httpx.get(f"{instance.url}/health/detailed").status_code == 401
    ok = httpx.get(f"{instance.url}/health/detailed", headers={"x-api-key": "client-key"})
    assert ok.status_code == 200 and UPSTREAM_KEY not in ok.text


@pytest.mark.e2e
def test_detailed_health_counts_tracked_runs(tracked_oas, upstream):
    upstream.queue(Reply(text="tracked"))
    tracked_oas.client().messages.create(
        model="big", max_tokens=10, messages=[{"role": "user", "content": "hi"}]
    )
    tracked_oas.runtime.recorder.flush()
    health = orjson.loads(httpx.get(f"{tracked_oas.url}/health/detailed").content)
    assert health["prefect"]["tracking"] is True and health["prefect"]["prefect_up"] is True
    assert health["prefect"]["tracked"] >= 1
    assert health["prefect"]["api_url"] == tracked_oas.settings.prefect_api_url
