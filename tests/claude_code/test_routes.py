"""Routing rules under a real Claude Code session: its Haiku side calls take the cheap
route, its main turns (those that offer Bash) another, each run tagged with its route."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from tests.claude_code import expect, scenarios
from tests.claude_code.session import run_scenario
from tests.conftest import make_settings
from tests.support.anthropic_checks import stream_message
from tests.support.recording import RecordedOas
from tests.support.runs import EndedRuns

pytestmark = [pytest.mark.e2e, pytest.mark.claude_code]

SIDE, MAIN = "google/gemini-2.5-flash", "openai/gpt-5.1"
SMALL_KINDS = {"bash-prefix", "file-paths"}  # side calls Claude Code sends to its Haiku model
CONFIG = f"""
routes:
  - name: side-calls
    when: {{model: "claude-*haiku*"}}
    model: {SIDE}
  - name: coding
    when: {{tools: Bash}}
    model: {MAIN}
"""


@pytest.fixture(scope="module")
def routed_oas(upstream_server, tmp_path_factory) -> Iterator[RecordedOas]:
    from src.coordinators.runtime import Runtime

    directory = tmp_path_factory.mktemp("routed")
    (directory / "oas.yaml").write_text(CONFIG)
    settings = make_settings(upstream_server, directory, config_file=directory / "oas.yaml")
    runtime = Runtime.create(settings)
    runtime.start()
    runtime.services.tokenizers.join(120)
    front = RecordedOas(settings, runtime)
    front.ended = EndedRuns(front)
    yield front
    front.stop()
    asyncio.run(runtime.aclose())


def test_side_calls_and_main_turns_take_their_routes(claude_code, routed_oas, upstream, workspace):
    home, work = workspace
    routed_oas.ended.runs.clear()
    session = run_scenario(
        scenarios.write_and_run,
        claude_code=claude_code,
        front=routed_oas,
        upstream=upstream,
        home=home,
        work=work,
    )
    expect.clean_session(session)
    model = session.scenario.model
    assert model.main_requests and {b["model"] for b in model.main_requests} == {MAIN}
    runs = [r for r in routed_oas.ended.runs if r.flow_name == "messages"]
    side = [r for r in runs if "haiku" in r.parameters["model"]]
    main = [
        r
        for r in runs
        if r not in side
        and r.payload
        and any(t.get("name") == "Bash" for t in r.payload.get("tools") or [])
    ]
    assert all("route:side-calls" in r.tags and r.upstream_model == SIDE for r in side)
    assert main and all("route:coding" in r.tags and r.upstream_model == MAIN for r in main)
    if claude_code.major_minor < (2, 1):  # 2.1 sends no Haiku side calls when headless
        assert side, [r.parameters["model"] for r in runs]
        small = {b["model"] for kind, b in model.auxiliary if kind in SMALL_KINDS}
        assert small == {SIDE}, model.auxiliary
    # Each answer names the model Claude Code asked for, never the upstream's.
    for exchange in session.exchanges:
        if exchange.path == "/v1/messages" and exchange.status == 200:
            answer = stream_message(exchange) if exchange.is_stream else exchange.response_json()
            assert answer["model"] == exchange.json()["model"]
