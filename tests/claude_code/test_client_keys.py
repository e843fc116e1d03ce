"""`OAS_API_KEYS` with Claude Code: its `ANTHROPIC_API_KEY` (x-api-key) or
`ANTHROPIC_AUTH_TOKEN` (Bearer) must be one of them, and a wrong one gets a clear 401."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from tests.claude_code import expect, scenarios
from tests.claude_code.session import run_scenario
from tests.conftest import make_settings
from tests.support.recording import RecordedOas

pytestmark = [pytest.mark.e2e, pytest.mark.claude_code]

CLIENT_KEY = "oas-team-key-0123456789"


@pytest.fixture(scope="module")
def keyed_oas(upstream_server, tmp_path_factory) -> Iterator[RecordedOas]:
    from src.coordinators.runtime import Runtime

    settings = make_settings(
        upstream_server, tmp_path_factory.mktemp("keyed"), api_keys=[CLIENT_KEY]
    )
    runtime = Runtime.create(settings)
    runtime.start()
    front = RecordedOas(settings, runtime)
    yield front
    front.stop()
    asyncio.run(runtime.aclose())


@pytest.mark.parametrize("variable", ["ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN"])
def test_a_listed_key_is_accepted(claude_code, keyed_oas, upstream, workspace, variable):
    home, work = workspace
    unset = ("ANTHROPIC_API_KEY",) if variable == "ANTHROPIC_AUTH_TOKEN" else ()
    session = run_scenario(
        scenarios.write_and_run,
        claude_code=claude_code,
        front=keyed_oas,
        upstream=upstream,
        home=home,
        work=work,
        env={variable: CLIENT_KEY},
        unset=unset,
    )
    expect.clean_session(session)
    messages = [e for e in session.exchanges if e.path == "/v1/messages"]
    header = "x-api-key" if variable == "ANTHROPIC_API_KEY" else "authorization"
    assert all(CLIENT_KEY in e.headers.get(header, "") for e in messages)


def test_a_wrong_key_ends_the_session_with_a_clear_message(
    claude_code, keyed_oas, upstream, workspace
):
    home, work = workspace
    session = run_scenario(
        scenarios.write_and_run,
        claude_code=claude_code,
        front=keyed_oas,
        upstream=upstream,
        home=home,
        work=work,
        timeout=90,
    )
    transcript = session.transcript
    assert not transcript.timed_out and transcript.returncode != 0, transcript.describe()
    assert transcript.result["is_error"]
    # oas says what Anthropic says ("invalid x-api-key"), so Claude Code shows its own
    # message for a wrong key: "Invalid API key · Fix external API key".
    assert "invalid api key" in transcript.result["result"].lower(), transcript.describe()
    assert all(
        e.response_json()["error"]["message"] == "invalid x-api-key"
        for e in session.exchanges
        if e.path == "/v1/messages"
    )
    assert session.upstream_requests == []  # nothing reached the paid upstream
    expect.answered_validly(session, allow_status=frozenset({401}))
