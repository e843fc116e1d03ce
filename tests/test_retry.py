"""Retry from the dashboard: a failed request run, rescheduled exactly as the Prefect UI's
Retry button does it, runs again in the same flow run through the runner of `oas`."""

from __future__ import annotations

import json
import time
from typing import Any

import anthropic
import pytest

from src.cli import main as oas_main
from tests.conftest import UPSTREAM_KEY
from tests.support.prefect_api import PrefectReader
from tests.support.upstream import COSTED_USAGE, Reply

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

# What the dashboard's Retry sends: the default UI (prefect/server/ui-v2, "Retry" in the
# run's menu, then in its dialog) forces the state; the classic UI (ui, `retryFlowRun`)
# lets Prefect's orchestration rules decide, and they reschedule only runs of a deployment.
UI_RETRY = {
    "state": {"type": "SCHEDULED", "name": "AwaitingRetry", "message": "Retry from the UI"},
    "force": True,
}
CLASSIC_UI_RETRY = {**UI_RETRY, "force": False}


@pytest.fixture
def serving_oas(make_oas, upstream, prefect_api, tmp_path, monkeypatch):
    """`oas` serving its deployments. The runner's flow-run processes read their settings
    from the environment, as they do under `oas serve`: give them this instance's."""
    instance = make_oas(tracking=True, prefect_api_url=prefect_api, serve_deployments=True)
    monkeypatch.setenv("OPENROUTER_BASE_URL", upstream.base_url)
    monkeypatch.setenv("OPENROUTER_API_KEY", UPSTREAM_KEY)
    monkeypatch.setenv("OAS_DATA_DIR", str(instance.settings.data_dir))
    monkeypatch.setenv("OAS_PAYLOAD_DIR", str(instance.settings.payload_store_dir))
    monkeypatch.setenv("OAS_RETRIES", "0")
    assert instance.runtime.deployments.ready.wait(120), "the deployments were not served"
    return instance


def _failed_request(oas, upstream, session: str | None = None) -> str:
    upstream.queue(Reply(status=503, error={"code": 503, "message": "provider overloaded"}))
    with pytest.raises(anthropic.APIStatusError) as caught:
        oas.client().messages.create(
            model="small",
            max_tokens=50,
            messages=[{"role": "user", "content": "What is 6 x 7?"}],
            extra_headers={"x-claude-code-session-id": session} if session else None,
        )
    return caught.value.response.headers["request-id"]


def _wait_for_state(
    reader: PrefectReader, flow_run_id: str, states: set[str], timeout: float = 240.0
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        run = reader.http.get(f"/flow_runs/{flow_run_id}").json()
        if run["state_type"] in states and run["run_count"] >= 1:
            return run
        if time.monotonic() > deadline:
            raise AssertionError(f"flow run still {run['state_type']}: {run['state']}")
        time.sleep(0.5)


def _completed_tasks(
    reader: PrefectReader, flow_run_id: str, expected: set[str], timeout: float = 30.0
) -> set[str]:
    """Names of the run's completed task runs, once `expected` are among them (Prefect
    records task runs a moment after the flow run ends)."""
    deadline = time.monotonic() + timeout
    while True:
        runs = reader.http.post(
            "/task_runs/filter", json={"flow_runs": {"id": {"any_": [flow_run_id]}}}
        ).json()
        names = {t["name"] for t in runs if t["state_type"] == "COMPLETED"}
        if expected <= names or time.monotonic() > deadline:
            return names
        time.sleep(0.3)


def test_retry_from_the_dashboard_runs_the_same_flow_run_again(
    serving_oas, upstream, prefect_api, capsys
):
    reader = PrefectReader(prefect_api)
    request_id = _failed_request(serving_oas, upstream, session="s-retried")
    failed = reader.flow_run_for_request(request_id, state="FAILED", timeout=60)
    deployment = reader.http.get("/deployments/name/messages/messages").json()
    assert failed["deployment_id"] == deployment["id"]  # what gives it the Retry button
    serving_oas.runtime.recorder.flush()

    upstream.queue(Reply(text="42, after the retry", usage=COSTED_USAGE))  # the cause is fixed
    answer = reader.http.post(f"/flow_runs/{failed['id']}/set_state", json=UI_RETRY).json()
    assert answer["status"] == "ACCEPT", answer

    done = _wait_for_state(reader, failed["id"], {"COMPLETED", "FAILED", "CRASHED"})
    assert done["state_type"] == "COMPLETED", done["state"]
    assert upstream.requests[-1]["messages"][-1]["content"] == "What is 6 x 7?"
    assert not any(t.startswith("error:") for t in done["tags"])
    assert "model:small" in done["tags"]
    # the retry's own task runs, made by Prefect's engine, with clean names
    assert {
        "load-payload",
        "validate-request",
        "call-upstream",
        "convert-response",
    } <= _completed_tasks(reader, failed["id"], expected={"convert-response"})
    # the retry's own lines reach Prefect through its log worker, in batches: wait for them
    lines = reader.logs(failed["id"], containing="answered by")
    assert any("answered by" in line["message"] for line in lines), lines
    assert UPSTREAM_KEY not in str(lines)
    # what the retry cost is in the ledger (`oas usage`), under the session it came from
    capsys.readouterr()
    assert oas_main(["usage", "--sessions", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["rows"]
    assert [(r["requests"], r["cost"]) for r in rows if r["session"] == "s-retried"] == [
        (1, 0.0125)
    ]


def test_retry_of_a_run_whose_payload_is_gone_fails_saying_so(serving_oas, upstream, prefect_api):
    reader = PrefectReader(prefect_api)
    request_id = _failed_request(serving_oas, upstream)
    failed = reader.flow_run_for_request(request_id, state="FAILED", timeout=60)
    serving_oas.runtime.recorder.flush()
    (serving_oas.settings.payload_store_dir / "requests" / f"{request_id}.json").unlink()

    answer = reader.http.post(f"/flow_runs/{failed['id']}/set_state", json=CLASSIC_UI_RETRY).json()
    assert answer["status"] == "ACCEPT", answer
    done = _wait_for_state(reader, failed["id"], {"FAILED", "COMPLETED", "CRASHED"})
    assert done["state_type"] == "FAILED"
    assert "no longer stored" in done["state"]["message"], done["state"]


def test_the_replay_deployment_runs_from_the_run_form(serving_oas, upstream, prefect_api):
    """The dashboard's Run form creates a flow run of the deployment with its parameters."""
    reader = PrefectReader(prefect_api)
    failed = reader.flow_run_for_request(
        _failed_request(serving_oas, upstream), state="FAILED", timeout=60
    )
    serving_oas.runtime.recorder.flush()
    deployment = reader.http.get("/deployments/name/replay/replay").json()

    upstream.queue(Reply(text="replayed on another model"))
    created = reader.http.post(
        f"/deployments/{deployment['id']}/create_flow_run",
        json={"parameters": {"flow_run_id": failed["id"], "model": "openai/gpt-4o"}},
    ).json()
    done = _wait_for_state(reader, created["id"], {"COMPLETED", "FAILED", "CRASHED"})
    assert done["state_type"] == "COMPLETED", done["state"]
    assert upstream.requests[-1]["model"] == "openai/gpt-4o"
    assert done["name"] == f"replay · {failed['name']}"
    assert {"replay", f"replay-of:{failed['id']}", "model:openai/gpt-4o"} <= set(done["tags"])
