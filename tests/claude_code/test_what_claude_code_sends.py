"""What each pinned release really sends, and that `oas` takes all of it.

This pins the capture the scripted model was written from: when a release bump changes
it (new fields, new betas, new side calls), this test says so, and the model (and the
docs) get another look. Every request here was answered with a valid 200 (checked by
`expect.clean_session`), so these are shapes `oas` is known to accept.
"""

from __future__ import annotations

import pytest

from tests.claude_code import expect, scenarios

pytestmark = [pytest.mark.e2e, pytest.mark.claude_code]


def _betas(exchanges) -> set[str]:
    return {b for e in exchanges for b in e.headers.get("anthropic-beta", "").split(",") if b}


def test_the_requests_each_release_sends_are_accepted(run_session, claude_code):
    session = run_session(scenarios.write_and_run)
    expect.clean_session(session)
    messages = [e for e in session.exchanges if e.path == "/v1/messages"]
    bodies = [e.json() for e in messages]
    main = [b for b in bodies if b["max_tokens"] > 1000 and len(b.get("tools") or []) > 5]
    kinds = [kind for kind, _ in session.scenario.model.auxiliary]
    assert "other" not in kinds, "a side request the scripted model does not know yet"
    assert all(e.query == "beta=true" for e in messages)  # the SDK's beta endpoint
    assert all(b["stream"] for b in main)
    assert {"claude-code-20250219", "interleaved-thinking-2025-05-14"} <= _betas(messages)
    assert all(any(block.get("cache_control") for block in b["system"]) for b in main)
    tools = {t["name"] for t in main[0]["tools"]}
    assert {"Bash", "Read", "Edit", "Write"} <= tools

    if claude_code.major_minor < (2, 1):
        assert not any("x-claude-code-session-id" in e.headers for e in messages)
        suffix = f"_session_{session.transcript.session_id}"
        assert all(b["metadata"]["user_id"].endswith(suffix) for b in bodies)
        assert {"bash-prefix", "file-paths"} <= set(kinds)  # small-model side calls
        assert {"Glob", "Grep", "TodoWrite", "WebSearch"} <= tools
    if claude_code.major_minor == (1, 0):
        assert "fine-grained-tool-streaming-2025-05-14" in _betas(messages)
        assert all(b.get("temperature") == 1 for b in main)
    if claude_code.major_minor == (2, 0):
        assert kinds.count("warmup") == 3  # Bash, Explore (haiku) and Plan sub-agents warm up
    if claude_code.major_minor >= (2, 1):
        assert kinds == []
        sessions = {e.headers["x-claude-code-session-id"] for e in messages}
        assert sessions == {session.transcript.session_id}
        assert {
            "context-management-2025-06-27",
            "advanced-tool-use-2025-11-20",
            "effort-2025-11-24",
        } <= _betas(messages)
        for body in main:
            assert body["thinking"]["type"] == "adaptive"
            assert body["context_management"]["edits"]
            assert body["output_config"]["effort"]
            assert any(t.get("defer_loading") for t in body["tools"])
            assert any(m["role"] == "system" for m in body["messages"])  # mid-conversation system
        assert "ToolSearch" in tools
