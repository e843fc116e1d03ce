"""Real Claude Code releases doing real coding sessions through `oas`.

Each test runs one pinned release (`claude_code` is parametrized over 1.0, 2.0 and the
newest 2.1) headless against `oas`, with the scripted model at the upstream.
"""

from __future__ import annotations

from functools import partial

import orjson
import pytest

from tests.claude_code import expect, scenarios
from tests.support.anthropic_checks import stream_message

pytestmark = [pytest.mark.e2e, pytest.mark.claude_code]


def _main_exchanges(session):
    """The recorded `/v1/messages` exchanges of the scenario's main loop, in order."""
    marker = session.scenario.model.marker
    return [
        e
        for e in session.exchanges
        if e.path == "/v1/messages"
        and marker in orjson.dumps(e.json()["messages"][:1]).decode()
        and any(t["name"] == "Bash" for t in e.json().get("tools") or [])
    ]


def test_write_a_file_run_it_and_answer(run_session):
    session = run_session(scenarios.write_and_run)
    expect.clean_session(session)
    names = [b["name"] for b in session.transcript.tool_uses]
    assert names == ["Write", "Bash"]
    # Out of the box Claude Code asks for Claude models; oas answers with its big/small.
    asked = {e.json()["model"] for e in session.exchanges if e.path == "/v1/messages"}
    assert all(name.startswith("claude-") for name in asked), asked
    assert {b["model"] for b in session.upstream_requests} <= {
        "anthropic/claude-sonnet-4",
        "anthropic/claude-3.7-sonnet",
    }
    main_models = {b["model"] for b in session.scenario.model.main_requests}
    assert main_models == {"anthropic/claude-sonnet-4"}


def test_read_then_edit_over_dependent_turns(run_session):
    session = run_session(scenarios.read_edit)
    expect.clean_session(session)
    names = [b["name"] for b in session.transcript.tool_uses]
    assert names == ["Read", "Edit", "Bash"]
    # The Edit's old_string is the value the Read returned: the result reached the model.
    edit = session.transcript.tool_uses[1]["input"]
    assert edit["old_string"] in str(session.transcript.tool_results[0]["content"])


def test_two_tool_calls_in_one_assistant_turn(run_session):
    session = run_session(scenarios.parallel_reads)
    expect.clean_session(session)
    uses = session.transcript.tool_uses
    assert [b["name"] for b in uses] == ["Read", "Read"]
    # One assistant message carried both calls ...
    first_answer = stream_message(_main_exchanges(session)[0])
    assert [b["type"] for b in first_answer["content"]] == ["text", "tool_use", "tool_use"]
    assert first_answer["stop_reason"] == "tool_use"
    # ... and Claude Code sent both results back together in the next request.
    follow_up = _main_exchanges(session)[1].json()["messages"]
    results = [b for b in follow_up[-1]["content"] if b.get("type") == "tool_result"]
    assert {r["tool_use_id"] for r in results} == {
        b["id"] for b in first_answer["content"] if b["type"] == "tool_use"
    }


def test_a_failing_tool_is_reported_and_the_model_recovers(run_session):
    session = run_session(scenarios.failing_tool)
    expect.clean_session(session)
    outcomes = [r.get("is_error", False) for r in session.transcript.tool_results]
    assert outcomes == [True, False, False]
    # The model saw the failure as such in the upstream request.
    failed = [m for m in session.scenario.model.main_requests[1]["messages"] if m["role"] == "tool"]
    content = failed[-1]["content"] if failed else ""
    if isinstance(content, list):  # text parts, when they carry cache_control breakpoints
        content = "".join(part.get("text", "") for part in content)
    assert content.startswith("Error")


def test_thinking_blocks_with_tool_use_across_turns(run_session):
    session = run_session(scenarios.thinking_with_tools)
    expect.clean_session(session)
    thoughts = [b["thinking"] for b in session.transcript.blocks("assistant", "thinking")]
    assert len(thoughts) == 3
    assert thoughts[0].startswith("The user wants a notes file.")
    main = _main_exchanges(session)
    assert all(e.json().get("thinking") for e in main), "Claude Code did not ask for thinking"
    # Claude Code kept each earlier thinking block, with its signature, in the history it
    # sent back: the streamed thinking blocks were complete and well-formed.
    history = [
        b
        for m in main[-1].json()["messages"]
        if m["role"] == "assistant"
        for b in m["content"]
        if b.get("type") == "thinking"
    ]
    assert [b["signature"] for b in history][:2] == [
        b["signature"] for b in (stream_message(e)["content"][0] for e in main[:2])
    ]
    # ...and the upstream got each signature back as the model gave it.
    upstream_history = session.scenario.model.main_requests[-1]["messages"]
    returned = [
        d.get("signature") or ""
        for m in upstream_history
        if m["role"] == "assistant"
        for d in m.get("reasoning_details") or ()
    ]
    signed = [s for s in returned if s.startswith("sig-")]
    assert [s.rsplit("-", 1)[1] for s in signed] == ["1", "2"], returned


def test_notebook_edit_and_on_2_1_a_deferred_tool_loaded_by_tool_search(run_session, claude_code):
    """NotebookEdit is a deferred tool in 2.1: the model loads it with ToolSearch, whose
    result is a `tool_reference` block, then calls it; older releases offer it directly."""
    deferred = claude_code.major_minor >= (2, 1)
    session = run_session(partial(scenarios.notebook_edit, deferred=deferred))
    expect.clean_session(session)
    names = [b["name"] for b in session.transcript.tool_uses]
    assert names == (["ToolSearch"] if deferred else []) + ["Read", "NotebookEdit"]
