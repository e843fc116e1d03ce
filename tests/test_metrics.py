"""GET /metrics (Prometheus) and GET /tool-metrics (JSON): what the process has served."""

from __future__ import annotations

import anthropic
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from src.coordinators.runs import returned_tool_results
from src.core.metrics import MAX_LABEL_VALUES, OTHER, Metrics
from tests.support.upstream import Reply, ToolCall


def scrape(instance) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of /metrics by (name, sorted labels)."""
    response = httpx.get(f"{instance.url}/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


def value(samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def ask(instance, **kwargs):
    defaults = {"model": "big", "max_tokens": 50, "messages": [{"role": "user", "content": "hi"}]}
    return instance.client().messages.create(**{**defaults, **kwargs})


def test_requests_latency_tokens_and_cost_are_counted(oas, upstream):
    before = scrape(oas)
    upstream.queue(
        Reply(
            text="one",
            usage={"prompt_tokens": 120, "completion_tokens": 7, "total_tokens": 127, "cost": 0.25},
        )
    )
    ask(oas)
    upstream.queue(Reply(text="streamed", chunk_size=2))
    with oas.client().messages.stream(
        model="big", max_tokens=50, messages=[{"role": "user", "content": "hi"}]
    ) as stream:
        stream.get_final_message()
    after = scrape(oas)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    done = {"flow": "messages", "outcome": "completed"}
    assert delta("oas_requests_total", mode="non-stream", **done) == 1
    assert delta("oas_requests_total", mode="stream", **done) == 1
    assert delta("oas_request_duration_seconds_count", mode="stream", **done) == 1
    assert delta("oas_time_to_first_byte_seconds_count", flow="messages", mode="stream") == 1
    assert delta("oas_time_to_first_byte_seconds_count", flow="messages", mode="non-stream") == 1
    assert delta("oas_time_to_first_token_seconds_count", mode="stream") == 1
    model = oas.settings.big_model
    assert delta("oas_tokens_total", model=model, kind="input") >= 120
    assert delta("oas_tokens_total", model=model, kind="output") >= 7
    assert delta("oas_cost_usd_total", model=model) >= 0.25
    assert delta("oas_model_requests_total", model=model) == 2
    assert delta("oas_runs_untracked_total") == 2  # tracking is off in this instance
    assert value(after, "oas_prefect_up") in (0.0, 1.0)


def test_upstream_errors_are_counted_by_type_and_client_errors_are_not(oas, upstream):
    before = scrape(oas)
    upstream.queue(Reply(status=429, error={"code": 429, "message": "slow down"}))
    with pytest.raises(anthropic.RateLimitError):
        ask(oas)
    upstream.queue(Reply(status=500))
    with pytest.raises(anthropic.InternalServerError):
        ask(oas)
    with pytest.raises(anthropic.BadRequestError):
        ask(oas, messages=[])
    after = scrape(oas)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("oas_upstream_errors_total", type="rate_limit_error") == 1
    assert delta("oas_upstream_errors_total", type="api_error") == 1
    assert delta("oas_upstream_errors_total", type="invalid_request_error") == 0
    assert delta("oas_errors_total", flow="messages", type="invalid_request_error") == 1
    assert delta("oas_requests_total", flow="messages", mode="non-stream", outcome="failed") == 3


def test_count_tokens_requests_are_counted_apart(oas):
    before = scrape(oas)
    oas.client().messages.count_tokens(model="big", messages=[{"role": "user", "content": "hi"}])
    after = scrape(oas)
    labels = {"flow": "count-tokens", "mode": "count", "outcome": "completed"}
    assert (
        value(after, "oas_requests_total", **labels) - value(before, "oas_requests_total", **labels)
        == 1
    )


def test_tool_metrics_count_calls_returned_results_and_errors(oas, upstream):
    before = httpx.get(f"{oas.url}/tool-metrics").json()
    upstream.queue(Reply(tool_calls=[ToolCall("Bash", {"command": "ls"}, id="call_1")]))
    first = ask(oas, tools=[{"name": "Bash", "input_schema": {"type": "object"}}])
    tool_use = next(b for b in first.content if b.type == "tool_use")
    upstream.queue(Reply(text="the command failed"))
    ask(
        oas,
        tools=[{"name": "Bash", "input_schema": {"type": "object"}}],
        messages=[
            {"role": "user", "content": "list files"},
            {"role": "assistant", "content": [tool_use.model_dump()]},
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": tool_use.id,
                        "content": "permission denied",
                        "is_error": True,
                    }
                ],
            },
        ],
    )
    after = httpx.get(f"{oas.url}/tool-metrics").json()
    old = before["tools"].get("Bash", {"calls": 0, "results": 0, "errors": 0})
    bash = after["tools"]["Bash"]
    assert (
        bash["calls"] - old["calls"],
        bash["results"] - old["results"],
        bash["errors"] - old["errors"],
    ) == (1, 1, 1)
    assert {"repaired", "invalid"} <= set(bash)
    model = after["models"][oas.settings.big_model]
    assert {"requests", "errors", "input_tokens", "output_tokens", "cost"} <= set(model)
    assert after["uptime_seconds"] >= 0 and after["since"]


def test_metrics_need_a_client_key_when_keys_are_set(make_oas):
    instance = make_oas(api_keys=["client-key"])
    assert httpx.get(f"{instance.url}/metrics").status_code == 401
    assert httpx.get(f"{instance.url}/tool-metrics").status_code == 401
    ok = httpx.get(f"{instance.url}/metrics", headers={"authorization": "Bearer client-key"})
    assert ok.status_code == 200 and "oas_requests_total" in ok.text


# ---- the pure parts --------------------------------------------------------------------


def test_only_the_last_turns_tool_results_are_news():
    body = {
        "messages": [
            {
                "role": "assistant",
                "content": [{"type": "tool_use", "id": "a", "name": "Read", "input": {}}],
            },
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": "a", "content": "x"}],
            },
            {
                "role": "assistant",
                "content": [
                    {"type": "tool_use", "id": "b", "name": "Bash", "input": {}},
                    {"type": "tool_use", "id": "c", "name": "Grep", "input": {}},
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "b", "is_error": True},
                    {"type": "tool_result", "tool_use_id": "c", "content": "found"},
                    {"type": "text", "text": "go on"},
                ],
            },
        ]
    }
    assert returned_tool_results(body) == [("Bash", True), ("Grep", False)]
    assert returned_tool_results({"messages": [{"role": "user", "content": "hi"}]}) == []
    assert returned_tool_results({"messages": "junk"}) == []


def test_client_chosen_label_values_are_capped():
    fresh = Metrics()
    for i in range(MAX_LABEL_VALUES + 50):
        fresh.record_usage(f"vendor/model-{i}", {"input_tokens": 1}, None)
    assert len(fresh.models) == MAX_LABEL_VALUES + 1
    assert fresh.models[OTHER].requests == 50
    text = fresh.prometheus_text().decode()
    assert text.count("oas_model_requests_total{") == MAX_LABEL_VALUES + 1
