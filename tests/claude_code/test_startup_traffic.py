"""Claude Code as users run it, with its side traffic on: probes, telemetry, token counts.

The other tests turn that traffic off to stay fast. Here nothing is turned off but the
auto-updater: whatever Claude Code sends to `ANTHROPIC_BASE_URL` besides the main loop
(`HEAD /api/hello`, `POST /api/event_logging/batch`, `POST /v1/messages/count_tokens`
and the small-model calls) must get a fast, well-formed answer, and the session must
still do its job. (Traffic to Anthropic's own hosts has nowhere to go on a test
machine; it fails without reaching `oas` and Claude Code carries on.)
"""

from __future__ import annotations

import pytest

from tests.claude_code import expect, scenarios
from tests.support.anthropic_checks import check_exchange

pytestmark = [pytest.mark.e2e, pytest.mark.claude_code]

# Unset for this test: the switches that silence Claude Code's non-essential traffic.
TRAFFIC_SWITCHES = (
    "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC",
    "DISABLE_TELEMETRY",
    "DISABLE_ERROR_REPORTING",
    "DISABLE_COST_WARNINGS",
    "DISABLE_BUG_COMMAND",
)


def test_side_traffic_is_answered_and_the_session_works(run_session, recorded_oas):
    session = run_session(scenarios.write_and_run, unset=TRAFFIC_SWITCHES)
    paths = {e.path for e in session.exchanges}
    assert "/v1/messages" in paths

    counts = [e for e in session.exchanges if e.path == "/v1/messages/count_tokens"]
    others = [e for e in session.exchanges if e not in counts]
    problems = [p for e in others for p in check_exchange(e)]
    assert not problems, "\n".join(problems)
    failed = [(e.path, e.status) for e in others if e.status >= 400]
    assert not failed, failed

    transcript = session.transcript
    assert not transcript.timed_out and transcript.returncode == 0, transcript.describe()
    assert session.scenario.answer in transcript.result["result"], transcript.describe()
    assert not session.scenario.model.problems
    for path, content in session.scenario.files.items():
        assert path.read_text() == content

    count_problems = [p for e in counts for p in check_exchange(e)]
    assert not count_problems, "\n".join(count_problems)
    expect.answered_validly(session)
