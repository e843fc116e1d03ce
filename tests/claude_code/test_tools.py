"""Every tool each pinned release offers, called through `oas` and its result checked.

One tour session per release covers the local tools (see `tour.py`); Task/Agent, WebSearch
and WebFetch have sessions of their own (`test_side_tools.py`). The tools a release offers
are read from what it sends, and a tool nobody has looked at fails the test.
"""

from __future__ import annotations

import pytest

from tests.claude_code import expect
from tests.claude_code.tools import offered_tools, unknown_tools
from tests.claude_code.tour import PLANS, tour

pytestmark = [pytest.mark.e2e, pytest.mark.claude_code]


def test_a_tour_of_every_local_tool(run_session, claude_code, tool_matrix):
    plan, git = PLANS[claude_code.major_minor]
    outcome = {}

    def factory(work):
        scenario, outcome["tour"] = tour(work, plan, git=git)
        return scenario

    session = run_session(factory, timeout=180)
    expect.clean_session(session, background_tail=claude_code.major_minor == (2, 0))
    bodies = [e.json() for e in session.exchanges if e.path == "/v1/messages"]
    main = [b for b in bodies if session.scenario.model.marker in str(b["messages"][:1])]
    offered = offered_tools(main)
    tool_matrix.offer(claude_code.version, offered)
    for tool, status in outcome["tour"].results.items():
        tool_matrix.record(claude_code.version, tool, status)
    planned = {p.tool for turn in plan for p in turn}
    assert planned <= offered, planned - offered
    assert set(outcome["tour"].results) == planned
    assert not unknown_tools(offered), (
        f"{claude_code.version} offers tools the matrix does not know: {unknown_tools(offered)}"
    )
    # A long tool loop: many tools, several calls in one turn, every result back in place.
    assert len(planned) >= 7 and max(len(turn) for turn in plan) >= 3
    assert len(session.transcript.tool_uses) == sum(len(turn) for turn in plan)
