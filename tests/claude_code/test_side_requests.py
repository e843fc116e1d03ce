"""Side requests Claude Code makes on its own, answered and tagged by kind.

Compaction (`/compact`) is a summary request: Claude Code sends the whole conversation
and asks for a detailed summary, then carries on from that summary.
"""

from __future__ import annotations

import pytest

from src.tasks.request_kind import request_kind
from tests.claude_code import expect, scenarios

pytestmark = [pytest.mark.e2e, pytest.mark.claude_code]


def test_compact_is_a_summary_request_answered_through_oas(
    run_session, claude_code, recorded_oas, workspace
):
    session = run_session(scenarios.greeting)
    expect.clean_session(session)
    home, work = workspace
    recorded_oas.app.clear()
    compacted = claude_code.run(
        "/compact",
        base_url=recorded_oas.url,
        home=home,
        cwd=work,
        args=("--resume", session.transcript.session_id),
    )
    context = compacted.describe()
    assert compacted.returncode == 0 and not compacted.timed_out, context
    bodies = [e.json() for e in recorded_oas.exchanges if e.path == "/v1/messages"]
    kinds = [request_kind(b) for b in bodies]
    assert "summary" in kinds, (kinds, context)
    summaries = [b for b in bodies if request_kind(b) == "summary"]
    # The summary request carries the conversation it summarises: the session's answer.
    assert "Hello from oas" in str(summaries[0]["messages"])
    kinds_seen = [k for k, _ in session.scenario.model.auxiliary]
    assert "summary" in kinds_seen
    expect.answered_validly(type(session)(session.scenario, compacted, recorded_oas.exchanges, []))
