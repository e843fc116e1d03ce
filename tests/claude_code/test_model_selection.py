"""Choosing models from Claude Code: `--model`, `ANTHROPIC_MODEL`, the small-model variables.

What docs/02-claude-code.md promises, checked at the upstream: the model id Claude Code
names reaches OpenRouter unchanged when it has a `/`, and Claude names map to
`OAS_BIG_MODEL` / `OAS_SMALL_MODEL`.
"""

from __future__ import annotations

import pytest

from tests.claude_code import expect, scenarios

pytestmark = [pytest.mark.e2e, pytest.mark.claude_code]

MAIN = "openai/gpt-4o"
SMALL = "google/gemini-2.5-flash"
SMALL_KINDS = {"bash-prefix", "file-paths"}  # side calls Claude Code sends to its small model


@pytest.mark.parametrize("how", ["flag", "env"])
def test_main_and_small_model_reach_the_upstream_as_named(run_session, claude_code, how):
    env = {"ANTHROPIC_SMALL_FAST_MODEL": SMALL, "ANTHROPIC_DEFAULT_HAIKU_MODEL": SMALL}
    args: tuple[str, ...] = ()
    if how == "flag":
        args = ("--model", MAIN)
    else:
        env["ANTHROPIC_MODEL"] = MAIN
    session = run_session(scenarios.write_and_run, args=args, env=env)
    expect.clean_session(session)
    assert session.transcript.init["model"] == MAIN
    model = session.scenario.model
    assert {body["model"] for body in model.main_requests} == {MAIN}
    small_calls = [body["model"] for kind, body in model.auxiliary if kind in SMALL_KINDS]
    if claude_code.major_minor < (2, 1):
        assert small_calls and set(small_calls) == {SMALL}
    else:  # 2.1 sends no small-model side calls in a headless session
        assert small_calls == []
