"""When the upstream fails, Claude Code retries what is worth retrying and says what is wrong.

Runs are bounded (`CLAUDE_CODE_MAX_RETRIES=2`, a hard timeout): a failure must end the
session with a message, never hang it.
"""

from __future__ import annotations

import pytest

from tests.claude_code import expect, scenarios

pytestmark = [pytest.mark.e2e, pytest.mark.claude_code]


def test_a_429_is_retried_and_the_session_succeeds(run_session, claude_code):
    session = run_session(scenarios.rate_limited_once)
    limited = [e for e in session.exchanges if e.status == 429]
    assert len(limited) == 1
    assert limited[0].response_json()["error"]["type"] == "rate_limit_error"
    assert "Rate limit exceeded" in limited[0].response_json()["error"]["message"]
    assert limited[0].response_headers.get("retry-after") == "1"
    # The same conversation is asked again and answered (releases before 2.1 retry it
    # without streaming, 2.1 streams again).
    later = [e for e in session.exchanges[session.exchanges.index(limited[0]) + 1:]
             if e.path == "/v1/messages" and e.json()["messages"] == limited[0].json()["messages"]]
    assert later and later[0].status == 200
    if claude_code.major_minor >= (2, 1):
        retries = [e for e in session.transcript.events if e.get("subtype") == "api_retry"]
        assert [r["error_status"] for r in retries] == [429]
    expect.clean_session(session, allow_status=frozenset({429}))


def test_a_401_ends_the_session_with_a_clear_message(run_session, claude_code):
    session = run_session(scenarios.upstream_unauthorized, timeout=90)
    transcript = session.transcript
    assert not transcript.timed_out, f"Claude Code hung on a 401:\n{transcript.describe()}"
    assert transcript.returncode != 0
    result = transcript.result
    assert result["is_error"], transcript.describe()
    message = result.get("result") or transcript.assistant_text
    # What the user reads says it is an authentication failure at the upstream and why.
    assert "401" in message, message
    assert "No auth credentials found" in message and "OPENROUTER_API_KEY" in message, message
    # Every attempt got a well-formed Anthropic error, and Claude Code gave up.
    expect.answered_validly(session, allow_status=frozenset({401}))
    assert all(e.status == 401 for e in session.exchanges if e.path == "/v1/messages")
    assert len(session.exchanges) <= 20
