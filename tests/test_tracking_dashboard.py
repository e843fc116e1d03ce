"""What a person reads on the Prefect dashboard, read back through Prefect's API: a run's
own log lines, its real start time and duration, web searches as steps, and one artifact
per Claude Code session with running totals."""

from __future__ import annotations

import time
from datetime import datetime

import anthropic
import pytest

from tests.conftest import UPSTREAM_KEY
from tests.support.prefect_api import PrefectReader
from tests.support.upstream import Reply

pytestmark = pytest.mark.e2e

USER = [{"role": "user", "content": "hi"}]
SEARCH_TOOL = {"type": "web_search_20250305", "name": "web_search", "max_uses": 8}


@pytest.fixture(scope="module")
def reader(prefect_api):
    return PrefectReader(prefect_api)


def _ts(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def test_a_failed_run_logs_its_model_attempts_and_the_upstreams_error(
    make_oas, upstream, prefect_api, reader
):
    oas = make_oas(tracking=True, prefect_api_url=prefect_api, retries=1, retry_base_delay=0.01)
    leaked = f"provider melted (key {UPSTREAM_KEY})"  # an upstream that echoes the key
    upstream.queue(
        Reply(status=503, error={"code": 503, "message": leaked}),
        Reply(status=503, error={"code": 503, "message": "provider still melted"}),
    )
    with pytest.raises(anthropic.APIStatusError) as caught:
        oas.client().messages.create(model="big", max_tokens=10, messages=USER)
    run = reader.flow_run_for_request(caught.value.response.headers["request-id"], state="FAILED")

    lines = reader.logs(run["id"], containing="provider still melted")
    text = "\n".join(line["message"] for line in lines)
    assert "model chosen" in text and "upstream_model=anthropic/claude-sonnet-4" in text
    failures = [line for line in lines if line["message"].startswith("upstream attempt failed")]
    assert len(failures) == 2 and all(line["level"] == 30 for line in failures)
    assert "provider melted" in failures[0]["message"] and "attempt=1" in failures[0]["message"]
    assert "provider still melted" in failures[1]["message"]
    assert "retrying upstream" in text
    assert UPSTREAM_KEY not in text and "SENTINEL" not in text  # masked, like the terminal
    # a line logged inside a step belongs to that task run too
    resolve = next(
        t for t in reader.task_runs(run["id"], expected=5) if t["name"] == "resolve-model"
    )
    chosen = next(line for line in lines if line["message"].startswith("model chosen"))
    assert chosen["task_run_id"] == resolve["id"] and chosen["level"] == 10
    # an attempt's failure is on its own call-upstream task run, one per attempt
    calls = [t for t in reader.task_runs(run["id"], 5) if t["name"] == "call-upstream"]
    assert [t["state_type"] for t in calls] == ["FAILED", "FAILED"]
    assert [line["task_run_id"] for line in failures] == [t["id"] for t in calls]


def test_a_short_run_shows_its_real_start_time_and_duration(tracked_oas, upstream, reader):
    upstream.queue(Reply(text="a moment", first_byte_delay=0.4))
    before = time.time()
    raw = tracked_oas.client().messages.with_raw_response.create(
        model="small", max_tokens=10, messages=USER
    )
    after = time.time()
    run = reader.flow_run_for_request(raw.headers["request-id"], state="COMPLETED")
    # what the runs list and the run page read: start time, end time, run time
    assert run["start_time"] and run["end_time"]
    start, end = _ts(run["start_time"]), _ts(run["end_time"])
    assert before <= start <= after
    assert run["total_run_time"] >= 0.4  # the upstream took 0.4 s of it
    assert run["estimated_run_time"] == run["total_run_time"]
    assert end - start == pytest.approx(run["total_run_time"], abs=0.01)
    assert run["total_run_time"] < (after - before) + 3.0  # not a made-up length either


def test_a_count_tokens_run_has_a_duration_too(tracked_oas, reader):
    raw = tracked_oas.client().messages.with_raw_response.count_tokens(model="small", messages=USER)
    run = reader.flow_run_for_request(raw.headers["request-id"], state="COMPLETED")
    assert run["start_time"] and run["total_run_time"] > 0


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_a_web_search_is_a_step_with_its_query_and_results(tracked_oas, upstream, reader, stream):
    hits = [
        {
            "type": "url_citation",
            "url_citation": {
                "url": f"https://example.com/{n}",
                "title": f"Result {n}",
                "content": "News.",
                "start_index": 0,
                "end_index": 5,
            },
        }
        for n in range(3)
    ]
    upstream.queue(
        Reply(
            text="Fresh news today.",
            annotations=hits,
            usage={
                "prompt_tokens": 50,
                "completion_tokens": 5,
                "server_tool_use": {"web_search_requests": 1},
            },
        )
    )
    query = "prefect release notes"
    ask = {
        "model": "big",
        "max_tokens": 50,
        "tools": [SEARCH_TOOL],
        "messages": [{"role": "user", "content": f"Perform a web search for the query: {query}"}],
    }
    if stream:
        with tracked_oas.client().messages.stream(**ask) as events:
            events.get_final_message()
            request_id = events.response.headers["request-id"]
    else:
        request_id = (
            tracked_oas.client().messages.with_raw_response.create(**ask).headers["request-id"]
        )

    run = reader.flow_run_for_request(request_id, state="COMPLETED")
    assert "server-tool:web_search" in run["tags"]
    tasks = reader.task_runs(run["id"], expected=8)
    search = next(t for t in tasks if t["name"] == "web-search")
    assert search["state_type"] == "COMPLETED"
    lines = reader.logs(run["id"], containing="web search")
    line = next(line for line in lines if line["message"].startswith("web search"))
    assert f"query='{query}'" in line["message"] and "results=3" in line["message"]
    assert line["task_run_id"] == search["id"]
    summary = reader.artifacts(run["id"])[0]["data"]
    assert f"| server tools | web_search: '{query}': 3 results, 1 searches |" in summary


def test_a_sessions_requests_add_up_in_one_keyed_artifact(make_oas, upstream, prefect_api, reader):
    session = f"Sess_{time.time_ns()}.A"  # not a valid key as it is: normalised
    key = f"session-sess-{session[5:-2]}-a"
    headers = {"X-Claude-Code-Session-Id": session}

    def ask(oas, prompt_tokens: int, output_tokens: int, cost: float) -> None:
        upstream.queue(
            Reply(
                text="ok",
                usage={
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": output_tokens,
                    "cost": cost,
                },
            )
        )
        oas.client().messages.create(
            model="big", max_tokens=10, messages=USER, extra_headers=headers
        )

    first = make_oas(tracking=True, prefect_api_url=prefect_api)
    ask(first, 100, 10, 0.001)
    ask(first, 200, 20, 0.002)
    first.runtime.recorder.flush()
    latest = reader.latest_artifact(key)
    assert latest is not None, f"no artifact {key}"
    assert "| requests | 2 |" in latest["data"]
    assert "| input tokens | 300 |" in latest["data"]
    assert "| output tokens | 30 |" in latest["data"]
    assert "| cost (USD) | 0.003 |" in latest["data"]
    assert "anthropic/claude-sonnet-4 (2)" in latest["data"]
    assert latest["description"].startswith("Claude Code session: 2 requests")

    # Another process (oas restarted: a recorder with nothing in memory) carries them on.
    second = make_oas(tracking=True, prefect_api_url=prefect_api)
    upstream.queue(Reply(status=400, error={"code": 400, "message": "bad request"}))
    with pytest.raises(anthropic.BadRequestError):
        second.client().messages.create(
            model="big", max_tokens=10, messages=USER, extra_headers=headers
        )
    second.runtime.recorder.flush()
    latest = reader.latest_artifact(key)
    assert "| requests | 3 |" in latest["data"] and "| errors | 1 |" in latest["data"]
    assert "| input tokens | 300 |" in latest["data"]
    assert len(reader.artifact_versions(key)) >= 2  # each update is a version of the key
