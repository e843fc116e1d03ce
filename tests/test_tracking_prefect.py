"""Every request becomes a flow run in a real Prefect server, with named task runs."""

from __future__ import annotations

import anthropic
import pytest

from tests.support.prefect_api import PrefectReader
from tests.support.upstream import Reply

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def reader(prefect_api):
    return PrefectReader(prefect_api)


def test_a_request_is_a_completed_flow_run_with_its_steps(tracked_oas, upstream, reader):
    upstream.queue(Reply(text="tracked answer"))
    raw = tracked_oas.client().messages.with_raw_response.create(
        model="claude-sonnet-4-5",
        max_tokens=20,
        messages=[{"role": "user", "content": "hi"}],
        extra_headers={"X-Claude-Code-Session-Id": "session-123"},
    )
    request_id = raw.headers["request-id"]
    assert raw.parse().content[0].text == "tracked answer"

    run = reader.flow_run_for_request(request_id, state="COMPLETED")
    assert "claude-sonnet-4-5" in run["name"] and "sync" in run["name"]
    assert {
        "model:claude-sonnet-4-5",
        "non-stream",
        "session:session-123",
        "kind:main",
        "upstream:anthropic/claude-sonnet-4",
    } <= set(run["tags"])
    assert run["parameters"]["stream"] is False
    tasks = reader.task_runs(run["id"], expected=7)
    names = [t["name"] for t in tasks]
    assert names == [
        "validate-request",
        "resolve-model",
        "plan-server-tools",
        "convert-request",
        "call-upstream",
        "convert-response",
        "record-usage",
    ]
    assert all(t["state_type"] == "COMPLETED" for t in tasks)
    artifact = reader.artifacts(run["id"])[0]
    assert "anthropic/claude-sonnet-4" in artifact["data"]
    assert "| provider | Scripted |" in artifact["data"]  # who OpenRouter says answered
    assert "output tokens" in artifact["data"]


def test_a_stream_is_one_flow_run_with_a_stream_response_task(tracked_oas, upstream, reader):
    upstream.queue(Reply(text="streamed and tracked", chunk_size=2))
    with tracked_oas.client().messages.stream(
        model="small",
        max_tokens=20,
        messages=[{"role": "user", "content": "hi"}],
    ) as stream:
        final = stream.get_final_message()
        request_id = stream.response.headers["request-id"]
    assert final.content[0].text == "streamed and tracked"
    run = reader.flow_run_for_request(request_id, state="COMPLETED")
    assert "stream" in run["tags"]
    names = [t["name"] for t in reader.task_runs(run["id"], expected=7)]
    assert names == [
        "validate-request",
        "resolve-model",
        "plan-server-tools",
        "convert-request",
        "call-upstream",
        "stream-response",
        "record-usage",
    ]


def test_an_upstream_failure_is_a_failed_run_with_a_failed_task(tracked_oas, upstream, reader):
    upstream.queue(Reply(status=500, error={"code": 500, "message": "provider exploded"}))
    with pytest.raises(anthropic.InternalServerError) as caught:
        tracked_oas.client().messages.create(
            model="big", max_tokens=20, messages=[{"role": "user", "content": "hi"}]
        )
    request_id = caught.value.response.headers["request-id"]
    run = reader.flow_run_for_request(request_id, state="FAILED")
    assert "error:api_error" in run["tags"]
    tasks = {t["name"]: t for t in reader.task_runs(run["id"], expected=4)}
    assert tasks["call-upstream"]["state_type"] == "FAILED"
    assert "provider exploded" in tasks["call-upstream"]["state"]["message"]
