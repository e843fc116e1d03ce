"""Replaying a failed request, from the terminal and from the Prefect deployment."""

from __future__ import annotations

import json

import anthropic
import pytest

from src.cli import main as oas_main
from src.core.settings import get_settings
from src.flows.stored import Origin
from tests.conftest import UPSTREAM_KEY
from tests.support.prefect_api import PrefectReader
from tests.support.upstream import COSTED_USAGE, Reply

pytestmark = pytest.mark.e2e


@pytest.fixture
def replay_env(monkeypatch, tracked_oas, upstream):
    """The environment `oas replay` would have on the server's machine."""
    monkeypatch.setenv("OPENROUTER_BASE_URL", upstream.base_url)
    monkeypatch.setenv("OPENROUTER_API_KEY", UPSTREAM_KEY)
    monkeypatch.setenv("OAS_DATA_DIR", str(tracked_oas.settings.data_dir))
    monkeypatch.setenv("OAS_PAYLOAD_DIR", str(tracked_oas.settings.payload_store_dir))
    get_settings.cache_clear()


def _failed_request(tracked_oas, upstream, **kwargs) -> str:
    upstream.queue(
        Reply(status=404, error={"code": 404, "message": "No endpoints found for model"})
    )
    with pytest.raises(anthropic.NotFoundError) as caught:
        tracked_oas.client().messages.create(
            model="claude-sonnet-4-5",
            max_tokens=50,
            messages=[{"role": "user", "content": "What is 6 x 7?"}],
            **kwargs,
        )
    return caught.value.response.headers["request-id"]


def test_replay_of_a_failed_run_succeeds_once_the_cause_is_fixed(
    tracked_oas, upstream, prefect_api, replay_env, capsys
):
    reader = PrefectReader(prefect_api)
    request_id = _failed_request(
        tracked_oas, upstream, extra_headers={"x-claude-code-session-id": "s-replayed"}
    )
    original = reader.flow_run_for_request(request_id, state="FAILED")
    tracked_oas.runtime.recorder.flush()

    upstream.queue(Reply(text="42", usage=COSTED_USAGE))  # the cause is fixed
    assert oas_main(["replay", original["id"]]) == 0
    assert "42" in capsys.readouterr().out
    replayed = upstream.requests[-1]
    assert replayed["messages"] == [{"role": "user", "content": "What is 6 x 7?"}]
    assert replayed["model"] == "anthropic/claude-sonnet-4"

    runs = reader.http.post(
        "/flow_runs/filter",
        json={"flow_runs": {"tags": {"all_": ["replay", f"replay-of:{original['id']}"]}}},
    ).json()
    assert len(runs) == 1 and runs[0]["state_type"] == "COMPLETED"
    replay = runs[0]
    # as readable as the run it replays: its name, its tags, clean task names
    assert replay["name"] == f"replay · {original['name']}"
    assert {"model:claude-sonnet-4-5", "non-stream", "upstream:anthropic/claude-sonnet-4"} <= set(
        replay["tags"]
    )
    assert not any(t.startswith("error:") for t in replay["tags"])
    names = {t["name"] for t in reader.task_runs(replay["id"], expected=7)}
    assert {"load-payload", "validate-request", "call-upstream", "convert-response"} <= names
    artifact = reader.artifacts(replay["id"])[0]["data"]
    assert original["id"] in artifact
    # what the replay cost is in the ledger, under the session it came from
    capsys.readouterr()
    assert oas_main(["usage", "--sessions", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["rows"]
    assert [(r["requests"], r["cost"]) for r in rows if r["session"] == "s-replayed"] == [
        (1, 0.0125)
    ]


def test_replay_on_another_model_and_failing_again_exits_non_zero(
    tracked_oas, upstream, prefect_api, replay_env, capsys
):
    reader = PrefectReader(prefect_api)
    original = reader.flow_run_for_request(_failed_request(tracked_oas, upstream), state="FAILED")
    tracked_oas.runtime.recorder.flush()

    upstream.queue(Reply(status=404, error={"code": 404, "message": "still no endpoints"}))
    assert oas_main(["replay", original["id"], "--model", "openai/gpt-4o"]) == 1
    captured = capsys.readouterr()
    # quiet: no Prefect log lines, no traceback, one line saying why
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("replay failed: "), captured.err
    assert "still no endpoints" in lines[0]
    assert "Traceback" not in captured.err + captured.out
    assert upstream.requests[-1]["model"] == "openai/gpt-4o"
    replay = reader.http.post(
        "/flow_runs/filter", json={"flow_runs": {"tags": {"all_": [f"replay-of:{original['id']}"]}}}
    ).json()[0]
    assert replay["state_type"] == "FAILED"
    assert "model:openai/gpt-4o" in replay["tags"]
    assert "model:claude-sonnet-4-5" not in replay["tags"]
    assert "error:not_found_error" in replay["tags"]


def test_replay_with_verbose_shows_the_traceback(
    tracked_oas, upstream, prefect_api, replay_env, capsys
):
    reader = PrefectReader(prefect_api)
    original = reader.flow_run_for_request(_failed_request(tracked_oas, upstream), state="FAILED")
    tracked_oas.runtime.recorder.flush()

    upstream.queue(Reply(status=404, error={"code": 404, "message": "still no endpoints"}))
    assert oas_main(["replay", original["id"], "-v"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and err.rstrip().splitlines()[-1].startswith("replay failed: ")


def test_replay_of_a_stream_streams(tracked_oas, upstream, prefect_api, replay_env, capsys):
    reader = PrefectReader(prefect_api)
    upstream.queue(Reply(status=503, error={"code": 503, "message": "provider overloaded"}))
    with pytest.raises(anthropic.APIStatusError) as caught:
        with tracked_oas.client().messages.stream(
            model="small", max_tokens=50, messages=[{"role": "user", "content": "count"}]
        ) as s:
            s.get_final_message()
    original = reader.flow_run_for_request(
        caught.value.response.headers["request-id"], state="FAILED"
    )
    tracked_oas.runtime.recorder.flush()

    upstream.queue(Reply(text="one two three four", chunk_size=4))
    assert oas_main(["replay", original["id"]]) == 0
    assert "one two three four" in capsys.readouterr().out
    assert upstream.requests[-1]["stream"] is True
    replay = reader.http.post(
        "/flow_runs/filter", json={"flow_runs": {"tags": {"all_": [f"replay-of:{original['id']}"]}}}
    ).json()[0]
    assert {"stream", "model:small"} <= set(replay["tags"])
    artifact = reader.artifacts(replay["id"])[0]["data"]
    ttft = next(line for line in artifact.splitlines() if "time to first token" in line)
    assert ttft.split("|")[2].strip() not in ("", "-"), artifact


def test_unknown_flow_run_is_a_clear_failure(replay_env, capsys):
    missing = "00000000-0000-0000-0000-000000000000"
    assert oas_main(["replay", missing]) == 1
    assert capsys.readouterr().err == f"replay failed: no flow run {missing}\n"
    assert oas_main(["replay", "not-an-id"]) == 1
    assert capsys.readouterr().err == "replay failed: no flow run not-an-id\n"


def test_count_tokens_runs_are_neither_listed_nor_replayed(
    tracked_oas, upstream, prefect_api, replay_env, monkeypatch, capsys
):
    monkeypatch.setenv("PREFECT_API_URL", prefect_api)
    get_settings.cache_clear()
    reader = PrefectReader(prefect_api)
    with pytest.raises(anthropic.BadRequestError) as caught:
        tracked_oas.client().messages.count_tokens(model="small", messages=[])
    counted = reader.flow_run_for_request(
        caught.value.response.headers["request-id"], state="FAILED"
    )
    assert oas_main(["runs", "--limit", "200"]) == 0
    assert counted["id"] not in capsys.readouterr().out
    assert oas_main(["replay", counted["id"]]) == 1
    assert capsys.readouterr().err == (
        f"replay failed: flow run {counted['id']} is a count-tokens run: only messages runs "
        "(and replays of them) can be replayed\n"
    )


def test_the_replay_deployment_runs_from_prefect_like_the_ui_does(
    tracked_oas, upstream, prefect_api, tmp_path
):
    import os
    import socket
    import subprocess
    import sys
    import time

    import httpx
    from prefect.deployments import run_deployment

    reader = PrefectReader(prefect_api)
    original = reader.flow_run_for_request(_failed_request(tracked_oas, upstream), state="FAILED")
    tracked_oas.runtime.recorder.flush()

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {
        **os.environ,
        "PREFECT_API_URL": prefect_api,
        "OAS_PORT": str(port),
        "OPENROUTER_BASE_URL": upstream.base_url,
        "OPENROUTER_API_KEY": UPSTREAM_KEY,
        "OAS_PAYLOAD_DIR": str(tracked_oas.settings.payload_store_dir),
        "OAS_DATA_DIR": str(tmp_path),
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "src", "serve"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        deployment = None
        while time.monotonic() < deadline and deployment is None:
            found = httpx.post(
                f"{prefect_api}/deployments/filter",
                json={"deployments": {"name": {"any_": ["replay"]}}},
            ).json()
            deployment = found[0] if found else None
            time.sleep(0.5)
        assert deployment is not None, "oas serve did not register the replay deployment"
        assert deployment["tags"] == ["replay"]

        upstream.queue(Reply(text="replayed through the deployment"))
        run = run_deployment(
            "replay/replay", parameters={"flow_run_id": original["id"]}, timeout=90
        )
        assert run.state.is_completed(), run.state
        assert upstream.requests[-1]["messages"][-1]["content"] == "What is 6 x 7?"
        tags = set(reader.http.get(f"/flow_runs/{run.id}").json()["tags"])
        assert {"replay", f"replay-of:{original['id']}"} <= tags
    finally:
        server.terminate()
        output = server.communicate(timeout=30)[0].decode(errors="replace")
    assert "Traceback" not in output, output


def test_oas_runs_lists_recent_failures_with_their_error(
    tracked_oas, upstream, prefect_api, replay_env, monkeypatch, capsys
):
    monkeypatch.setenv("PREFECT_API_URL", prefect_api)
    get_settings.cache_clear()
    reader = PrefectReader(prefect_api)
    original = reader.flow_run_for_request(_failed_request(tracked_oas, upstream), state="FAILED")
    assert oas_main(["runs", "--limit", "50"]) == 0
    out = capsys.readouterr().out
    assert original["id"] in out
    assert "No endpoints found for model" in out
    assert "oas replay <id>" in out


def test_what_runs_again_is_charged_to_the_original_client_and_session():
    """The recorded run's `client:` tag names the client; the session comes from the stored
    request's context, or from the `session:` tag of a run stored before contexts had it."""
    assert Origin.of(["model:big", "client:alice", "session:s-1"], {}) == Origin("alice", "s-1")
    assert Origin.of(["stream", "session:s-1"], {"session_id": "s-2"}) == Origin(None, "s-2")
    assert Origin.of(["stream"], {}) == Origin(None, None)
