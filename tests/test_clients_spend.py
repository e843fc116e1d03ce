"""Named clients, their spend and their monthly budgets, end to end through the SDK.

Spend comes from the cost the upstream reports (the scripted upstream reports OpenRouter's
`usage.cost`), or from LiteLLM's price table when it reports none; it lands in a ledger
that several `oas` processes share, in `/metrics` and in `oas usage`.
"""

from __future__ import annotations

import hashlib
import json
import time
from datetime import UTC, datetime

import anthropic
import httpx
import pytest

from src.cli import main as oas_main
from src.services.spend.budget import next_reset
from tests.support.runs import EndedRuns
from tests.support.upstream import Reply

ALICE, BOB, CAROL = "alice-key-0123456789", "bob-key-0123456789", "carol-key-0123456789"


def _config(tmp_path, budget: float = 1.0, extra: str = ""):
    path = tmp_path / "oas.yaml"
    path.write_text(f"""
clients:
  - name: alice
    key_sha256: {hashlib.sha256(ALICE.encode()).hexdigest()}
    budget_usd: {budget}
  - name: bob
    key: {BOB}
  - name: carol
    key_env: CAROL_OAS_KEY
{extra}""")
    return path


@pytest.fixture(autouse=True)
def _carol_key(monkeypatch):
    monkeypatch.setenv("CAROL_OAS_KEY", CAROL)


def _sdk(instance, key, **kwargs):
    return anthropic.Anthropic(base_url=instance.url, api_key=key, max_retries=0, **kwargs)


def _ask(instance, key, model="claude-sonnet-4-5", session=None):
    headers = {"x-claude-code-session-id": session} if session else {}
    return _sdk(instance, key).messages.create(
        model=model,
        max_tokens=50,
        messages=[{"role": "user", "content": "hi"}],
        extra_headers=headers,
    )


def _costing(cost: float) -> Reply:
    return Reply(
        text="ok",
        usage={"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15, "cost": cost},
    )


def test_each_way_of_giving_a_key_identifies_its_client(make_oas, upstream, tmp_path):
    instance = make_oas(config_file=_config(tmp_path), api_keys=["shared-team-key"])
    ended = EndedRuns(instance)
    for key, name in ((ALICE, "alice"), (BOB, "bob"), (CAROL, "carol")):
        _ask(instance, key)
        assert f"client:{name}" in ended.last().tags
    # Bearer works as well as x-api-key.
    anthropic.Anthropic(
        base_url=instance.url, auth_token=BOB, api_key=None, max_retries=0
    ).messages.create(
        model="claude-sonnet-4-5", max_tokens=10, messages=[{"role": "user", "content": "x"}]
    )
    assert "client:bob" in ended.last().tags
    # OAS_API_KEYS keeps working, anonymously.
    _ask(instance, "shared-team-key")
    assert not [t for t in ended.last().tags if t.startswith("client:")]
    with pytest.raises(anthropic.AuthenticationError):
        _ask(instance, "alice-key-wrong")


def test_spend_per_client_and_model_in_metrics_and_oas_usage(
    make_oas, upstream, tmp_path, monkeypatch, capsys
):
    instance = make_oas(config_file=_config(tmp_path, budget=100))
    upstream.queue(_costing(0.25), _costing(0.5), _costing(0.125))
    _ask(instance, ALICE, session="s-alice")
    _ask(instance, ALICE, model="openai/gpt-4o", session="s-alice")
    _ask(instance, BOB, session="s-bob")
    metrics = httpx.get(f"{instance.url}/metrics", headers={"x-api-key": BOB}).text
    assert 'oas_spend_usd_total{client="alice",model="anthropic/claude-sonnet-4"} 0.25' in metrics
    assert 'oas_spend_usd_total{client="alice",model="openai/gpt-4o"} 0.5' in metrics
    assert 'oas_spend_usd_total{client="bob",model="anthropic/claude-sonnet-4"} 0.125' in metrics

    monkeypatch.setenv("OAS_DATA_DIR", str(instance.settings.data_dir))
    monkeypatch.setenv("OAS_CONFIG", str(instance.settings.config_file))
    deadline = time.monotonic() + 5
    while True:  # the ledger is written off the request path, within milliseconds
        assert oas_main(["usage"]) == 0
        out = capsys.readouterr().out
        if "total bob" in out or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    today = datetime.now(UTC).strftime("%Y-%m-%d")
    lines = [line.split() for line in out.splitlines()]
    assert ["alice", today, "anthropic/claude-sonnet-4", "1", "10", "5", "0.2500"] in lines
    assert ["alice", today, "openai/gpt-4o", "1", "10", "5", "0.5000"] in lines
    assert ["bob", today, "anthropic/claude-sonnet-4", "1", "10", "5", "0.1250"] in lines
    assert "total alice: $0.7500" in out
    # ...and per Claude Code session.
    assert oas_main(["usage", "--sessions", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["rows"]
    assert {(r["client"], r["session"], r["requests"], r["cost"]) for r in rows} == {
        ("alice", "s-alice", 2, 0.75),
        ("bob", "s-bob", 1, 0.125),
    }


def test_without_a_reported_cost_the_price_table_is_used(make_oas, upstream, tmp_path):
    instance = make_oas(config_file=_config(tmp_path, budget=100))
    upstream.queue(
        Reply(
            text="ok",
            usage={"prompt_tokens": 1000, "completion_tokens": 1000, "total_tokens": 2000},
        )
    )
    _ask(instance, BOB, model="openai/gpt-4o")
    from src.services.tokenizer import litellm_module

    price = litellm_module().model_cost["gpt-4o"]  # LiteLLM's name for OpenAI's model
    expected = 1000 * price["input_cost_per_token"] + 1000 * price["output_cost_per_token"]
    deadline = time.monotonic() + 30  # the price table needs LiteLLM's import
    while time.monotonic() < deadline:
        metrics = httpx.get(f"{instance.url}/metrics", headers={"x-api-key": BOB}).text
        line = [
            x
            for x in metrics.splitlines()
            if x.startswith('oas_spend_usd_total{client="bob",model="openai/gpt-4o"}')
        ]
        if line:
            break
        time.sleep(0.1)
    assert line and float(line[0].split()[-1]) == pytest.approx(expected)


def test_a_client_past_its_budget_gets_402_and_others_are_served(make_oas, upstream, tmp_path):
    instance = make_oas(config_file=_config(tmp_path, budget=1.0))
    upstream.queue(_costing(0.6), _costing(0.6))
    _ask(instance, ALICE)
    _ask(instance, ALICE)  # 0.6 spent when it started: served, and it may overshoot
    with pytest.raises(anthropic.APIStatusError) as refused:
        _ask(instance, ALICE)
    assert refused.value.status_code == 402
    error = refused.value.body["error"]
    reset = next_reset(datetime.now(UTC)).strftime("%Y-%m-%d")
    assert error["type"] == "billing_error"
    assert "'alice'" in error["message"] and "$1.2000 spent of $1.00" in error["message"]
    assert f"resets on {reset} 00:00 UTC" in error["message"]
    assert _ask(instance, BOB).content[0].text  # bob has no budget and is unaffected
    assert len(upstream.requests) == 3  # the refused request never reached the upstream


def test_two_oas_processes_share_one_sqlite_ledger(make_oas, upstream, tmp_path):
    ledger = f"sqlite:///{tmp_path / 'shared' / 'spend.sqlite3'}"
    first = make_oas(config_file=_config(tmp_path, budget=1.0), ledger_url=ledger)
    second = make_oas(config_file=_config(tmp_path, budget=1.0), ledger_url=ledger)
    _shared_budget(first, second, upstream)


def test_two_oas_processes_share_one_postgres_ledger(make_oas, upstream, tmp_path):
    from src.local_prefect.postgres import EmbeddedPostgres

    database = EmbeddedPostgres(tmp_path / "pg")
    url = database.start()
    try:
        first = make_oas(config_file=_config(tmp_path, budget=1.0), ledger_url=url)
        second = make_oas(config_file=_config(tmp_path, budget=1.0), ledger_url=url)
        _shared_budget(first, second, upstream)
        first.stop()
        second.stop()
        # The spend survives a restart: a new process still refuses alice.
        third = make_oas(config_file=_config(tmp_path, budget=1.0), ledger_url=url)
        with pytest.raises(anthropic.APIStatusError, match="budget"):
            _ask(third, ALICE)
        third.stop()
    finally:
        database.stop()


def _shared_budget(first, second, upstream):
    upstream.queue(_costing(1.5))
    _ask(first, ALICE)
    deadline = time.monotonic() + 2  # the first process's row is committed within ms
    while True:
        try:
            _ask(second, ALICE)
        except anthropic.APIStatusError as exc:
            assert exc.status_code == 402
            break
        assert time.monotonic() < deadline, "the second process never saw the first's spend"
        time.sleep(0.02)
    assert _ask(second, BOB).content  # other clients unaffected
