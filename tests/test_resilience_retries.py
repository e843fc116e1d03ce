"""Retries and fallbacks: failures that did nothing upstream are tried again (backoff with
jitter, `retry-after` honoured, bounded in count and seconds), then the next fallback
model; never once a byte has reached the client."""

from __future__ import annotations

import time

import httpx
import orjson
import pytest

from src.core.errors import AnthropicError
from src.tasks.upstream.retry import Attempts, RetryPolicy, parse_retry_after
from tests.support.upstream import Reply

USER = [{"role": "user", "content": "hi"}]


# ---- the policy, with a fake clock ------------------------------------------------------


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def failing(*errors: AnthropicError | str):
    """A `call(model)` that raises the given errors in turn, then answers with the model."""
    calls: list[str] = []
    queue = list(errors)

    async def call(model: str) -> str:
        calls.append(model)
        if queue:
            item = queue.pop(0)
            if isinstance(item, AnthropicError):
                raise item
        return f"answer from {model}"

    return call, calls


def retryable(kind: str = "overloaded_error", retry_after: str | None = None) -> AnthropicError:
    return AnthropicError(kind, f"{kind} upstream", retryable=True, retry_after=retry_after)


def attempts(models: tuple[str, ...], fake: FakeTime, **policy: float) -> Attempts:
    return Attempts(
        models, RetryPolicy(**policy), clock=fake.clock, sleep=fake.sleep, rng=lambda: 0.5
    )


async def test_backoff_grows_exponentially_with_jitter_and_a_cap():
    policy = RetryPolicy(base_delay=1.0, max_delay=5.0)
    assert policy.backoff(0, lambda: 0.0) == 0.5 and policy.backoff(0, lambda: 1.0) == 1.0
    assert policy.backoff(1, lambda: 0.0) == 1.0 and policy.backoff(1, lambda: 1.0) == 2.0
    assert policy.backoff(2, lambda: 1.0) == 4.0
    assert policy.backoff(6, lambda: 1.0) == 5.0  # capped


def test_retry_after_in_seconds_or_as_a_date():
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after("0.25") == 0.25
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:10 GMT", now=1445412480.0) == 10.0
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None


async def test_retries_then_answers():
    fake = FakeTime()
    call, calls = failing(retryable(), retryable())
    plan = attempts(("m",), fake, retries=2, base_delay=1.0)
    assert await plan.run(call) == "answer from m"
    assert calls == ["m", "m", "m"]
    assert fake.slept == [0.75, 1.5]  # jitter fixed at the middle: 1*(0.5..1), 2*(0.5..1)
    assert plan.summary()["attempts"][-1] == "m: ok"


async def test_retry_after_is_honoured_instead_of_backoff():
    fake = FakeTime()
    call, _ = failing(retryable("rate_limit_error", retry_after="4"))
    await attempts(("m",), fake, retries=1).run(call)
    assert fake.slept == [4.0]


async def test_not_retryable_fails_at_once_without_fallback():
    fake = FakeTime()
    call, calls = failing(AnthropicError("authentication_error", "bad key"))
    with pytest.raises(AnthropicError) as caught:
        await attempts(("m", "fallback"), fake).run(call)
    assert caught.value.error_type == "authentication_error"
    assert calls == ["m"] and fake.slept == []


async def test_fallback_after_retries_are_spent():
    fake = FakeTime()
    call, calls = failing(retryable(), retryable())
    plan = attempts(("primary", "second"), fake, retries=1)
    assert await plan.run(call) == "answer from second"
    assert calls == ["primary", "primary", "second"]
    assert plan.answered_by == "second"
    assert plan.summary()["fallbacks"] == ["second"]
    assert plan.tags() == ["retried", "fallback:second"]


async def test_retry_after_beyond_the_budget_goes_to_the_fallback_at_once():
    fake = FakeTime()
    call, calls = failing(retryable("rate_limit_error", retry_after="120"))
    await attempts(("primary", "second"), fake, retries=3, budget=30).run(call)
    assert calls == ["primary", "second"] and fake.slept == []


async def test_budget_bounds_the_whole_request():
    fake = FakeTime()
    call, calls = failing(*[retryable() for _ in range(50)])
    with pytest.raises(AnthropicError) as caught:
        await attempts(("m",), fake, retries=10, base_delay=1.0, max_delay=4.0, budget=10).run(call)
    assert sum(fake.slept) < 10
    assert len(calls) < 11
    assert f"after {len(calls)} attempts" in caught.value.message


async def test_all_failing_gives_the_last_error_with_the_story():
    fake = FakeTime()
    call, _ = failing(retryable("rate_limit_error", retry_after="1"), retryable("overloaded_error"))
    with pytest.raises(AnthropicError) as caught:
        await attempts(("a/one", "b/two"), fake, retries=0).run(call)
    assert caught.value.error_type == "overloaded_error"
    assert "a/one: rate_limit_error" in caught.value.message
    assert "b/two: overloaded_error" in caught.value.message


# ---- through the server ------------------------------------------------------------------


def post(oas, body: dict) -> httpx.Response:
    return httpx.post(f"{oas.url}/v1/messages", json=body, timeout=30)


@pytest.mark.parametrize("status", [429, 502, 503, 529])
def test_retryable_upstream_status_is_retried_and_answers(make_oas, upstream, status):
    oas = make_oas(retries=2, retry_base_delay=0.01)
    upstream.queue(Reply(status=status), Reply(text="second time lucky"))
    response = post(oas, {"model": "big", "max_tokens": 5, "messages": USER})
    assert response.status_code == 200
    assert response.json()["content"][0]["text"] == "second time lucky"
    assert len(upstream.requests) == 2


@pytest.mark.parametrize("status", [400, 401, 402, 403, 404, 500])
def test_other_statuses_are_not_retried(make_oas, upstream, status):
    oas = make_oas(retries=2, retry_base_delay=0.01, big_fallbacks=["openai/gpt-4o"])
    upstream.queue(Reply(status=status), Reply(text="never asked"))
    assert post(oas, {"model": "big", "max_tokens": 5, "messages": USER}).status_code == status
    assert len(upstream.requests) == 1


def test_retry_after_from_the_upstream_is_waited_for(make_oas, upstream):
    oas = make_oas(retries=1)
    times: list[float] = []

    def stamp(reply: Reply):
        def script(body: dict) -> Reply:
            times.append(time.monotonic())
            return reply

        return script

    upstream.queue(
        stamp(Reply(status=429, headers={"retry-after": "0.6"})), stamp(Reply(text="ok"))
    )
    assert post(oas, {"model": "big", "max_tokens": 5, "messages": USER}).status_code == 200
    assert times[1] - times[0] >= 0.6


def test_retry_budget_of_zero_means_no_retry(make_oas, upstream):
    oas = make_oas(retries=3, retry_budget=0)
    upstream.queue(Reply(status=529), Reply(text="x"))
    assert post(oas, {"model": "big", "max_tokens": 5, "messages": USER}).status_code == 529
    assert len(upstream.requests) == 1


def test_fallback_model_answers_and_the_response_says_so(make_oas, upstream):
    oas = make_oas(big_fallbacks=["openai/gpt-4o", "google/gemini-2.5-pro"])
    upstream.queue(Reply(status=529), Reply(status=502), Reply(text="third model speaking"))
    raw = oas.client().messages.with_raw_response.create(
        model="claude-opus-4-1", max_tokens=10, messages=USER
    )
    assert raw.parse().content[0].text == "third model speaking"
    assert raw.parse().model == "claude-opus-4-1"  # the client's name, as Anthropic echoes it
    assert raw.headers["x-oas-upstream-model"] == "google/gemini-2.5-pro"
    assert [r["model"] for r in upstream.requests] == [
        "anthropic/claude-sonnet-4",
        "openai/gpt-4o",
        "google/gemini-2.5-pro",
    ]


def test_fallbacks_from_the_config_file_for_any_model(make_oas, upstream, tmp_path):
    config = tmp_path / "oas.yaml"
    config.write_text("fallbacks:\n  deepseek/deepseek-chat: [qwen/qwen3-coder]\n")
    oas = make_oas(config_file=config)
    upstream.queue(Reply(status=503), Reply(text="qwen here"))
    with oas.client().messages.stream(
        model="deepseek/deepseek-chat", max_tokens=10, messages=USER
    ) as stream:
        text = stream.get_final_text()
        assert stream.response.headers["x-oas-upstream-model"] == "qwen/qwen3-coder"
    assert text == "qwen here"
    assert [r["model"] for r in upstream.requests] == ["deepseek/deepseek-chat", "qwen/qwen3-coder"]


def test_stream_failing_before_its_first_token_falls_back(make_oas, upstream):
    oas = make_oas(small_fallbacks=["openai/gpt-4o-mini"])
    upstream.queue(
        Reply(text="x", chunk_size=1, mid_stream_error={"code": 502, "message": "down"}),
        Reply(text="fallback streamed", chunk_size=3),
    )
    with oas.client().messages.stream(model="claude-haiku-4-5", max_tokens=10, messages=USER) as s:
        assert s.get_final_text() == "fallback streamed"
    assert len(upstream.requests) == 2


def test_no_retry_once_bytes_reached_the_client(make_oas, upstream):
    oas = make_oas(retries=3, retry_base_delay=0.01, big_fallbacks=["openai/gpt-4o"])
    upstream.queue(
        Reply(
            text="already said something",
            chunk_size=3,
            mid_stream_error={"code": 502, "message": "provider fell over"},
        ),
        Reply(text="would have been a second answer"),
    )
    response = post(oas, {"model": "big", "max_tokens": 5, "messages": USER, "stream": True})
    assert response.status_code == 200
    assert '"text":"alr"' in response.text and "second answer" not in response.text
    last = response.text.strip().split("\n\n")[-1]
    assert last.startswith("event: error")
    assert "provider fell over" in orjson.loads(last.split("data: ", 1)[1])["error"]["message"]
    assert len(upstream.requests) == 1


def test_exhausted_attempts_tell_the_client_what_was_tried(make_oas, upstream):
    oas = make_oas(retries=1, retry_base_delay=0.01, big_fallbacks=["openai/gpt-4o"])
    upstream.default = lambda body: Reply(status=529, error={"code": 529, "message": "busy"})
    response = post(oas, {"model": "big", "max_tokens": 5, "messages": USER})
    assert response.status_code == 529
    message = response.json()["error"]["message"]
    assert "after 4 attempts" in message
    assert "anthropic/claude-sonnet-4: overloaded_error" in message
    assert "openai/gpt-4o: overloaded_error" in message
    assert response.headers["x-oas-upstream-model"] == "openai/gpt-4o"


@pytest.mark.e2e
def test_the_flow_run_shows_every_attempt(make_oas, upstream, prefect_api):
    from tests.support.prefect_api import PrefectReader

    oas = make_oas(
        tracking=True,
        prefect_api_url=prefect_api,
        retries=1,
        retry_base_delay=0.01,
        big_fallbacks=["openai/gpt-4o"],
    )
    upstream.queue(
        Reply(status=429, error={"code": 429, "message": "slow down"}),
        Reply(status=502, error={"code": 502, "message": "model down"}),
        Reply(text="the fallback answered"),
    )
    raw = oas.client().messages.with_raw_response.create(model="big", max_tokens=10, messages=USER)
    assert raw.parse().content[0].text == "the fallback answered"
    reader = PrefectReader(prefect_api)
    run = reader.flow_run_for_request(raw.headers["request-id"], state="COMPLETED")
    assert {"retried", "fallback:openai/gpt-4o"} <= set(run["tags"])
    tasks = reader.task_runs(run["id"], expected=8)
    calls = [t for t in tasks if t["name"] == "call-upstream"]
    assert [t["state_type"] for t in calls] == ["FAILED", "FAILED", "COMPLETED"]
    assert "slow down" in calls[0]["state"]["message"]
    assert "model down" in calls[1]["state"]["message"]
    assert [t["name"] for t in tasks].count("convert-request") == 2  # the fallback's own body
    artifact = reader.artifacts(run["id"])[0]["data"]
    assert "anthropic/claude-sonnet-4: rate_limit_error (429)" in artifact
    assert "openai/gpt-4o: ok" in artifact
    assert "| fallbacks | openai/gpt-4o |" in artifact
    assert "| upstream model | openai/gpt-4o |" in artifact
