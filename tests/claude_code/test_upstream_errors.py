"""When the upstream fails, Claude Code retries what is worth retrying and says what is wrong.

Runs are bounded (`CLAUDE_CODE_MAX_RETRIES=2`, a hard timeout): a failure must end the
session with a message, never hang it.
"""

from __future__ import annotations

from dataclasses import replace
from functools import partial

import pytest

from tests.claude_code import expect, scenarios
from tests.support.anthropic_checks import check_exchange, check_stream

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
    later = [
        e
        for e in session.exchanges[session.exchanges.index(limited[0]) + 1 :]
        if e.path == "/v1/messages" and e.json()["messages"] == limited[0].json()["messages"]
    ]
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


@pytest.mark.parametrize("after_content", [False, True], ids=["before-content", "mid-text"])
def test_a_stream_that_breaks_ends_in_an_error_event_and_never_hangs(
    run_session, claude_code, after_content
):
    session = run_session(
        partial(scenarios.stream_breaks_once, after_content=after_content), timeout=90
    )
    transcript = session.transcript
    assert not transcript.timed_out, transcript.describe()
    message = "Provider returned error: upstream connection reset"
    if after_content:
        broken = next(
            e
            for e in session.exchanges
            if e.path == "/v1/messages" and e.status == 200 and b"event: error" in e.response_body
        )
        # The broken stream is well-formed up to its end, which is Anthropic's `error` event.
        checked = check_stream(broken.response_body)
        assert not checked.problems, checked
        assert checked.error["type"] == "api_error"
        assert checked.error["message"].startswith(message)
    else:
        # Nothing reached the client yet, so the failure is an HTTP error it can retry.
        broken = next(e for e in session.exchanges if e.path == "/v1/messages" and e.status >= 500)
        assert not check_exchange(broken), check_exchange(broken)
        assert message in broken.response_body.decode()
    rest = replace(session, exchanges=[e for e in session.exchanges if e is not broken])
    expect.answered_validly(rest)

    if (
        after_content
        and claude_code.major_minor < (2, 1)
        and transcript.result["subtype"] != "success"
    ):
        # Known client behaviour (the same with Anthropic's API): releases before 2.1 drop
        # a stream that fails after content they already showed and end the turn without an
        # answer. When the text and the error event arrive in one write (oas sends the
        # chunks of one upstream read together), they ask again instead, as below.
        assert transcript.result["subtype"] == "error_during_execution", transcript.describe()
        return
    # Otherwise Claude Code asks again (1.0/2.0 without streaming) and the session succeeds.
    expect.clean_session(rest)
