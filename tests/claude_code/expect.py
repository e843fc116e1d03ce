"""What a user of Claude Code on `oas` must see after a session that went well."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tests.support.anthropic_checks import check_exchange

if TYPE_CHECKING:
    from tests.claude_code.session import Session


def answered_validly(session: Session, *, allow_status: frozenset[int] = frozenset()) -> None:
    """Every request that reached `oas` got a well-formed answer (and a 2xx, unless allowed)."""
    problems = [p for e in session.exchanges for p in check_exchange(e)]
    assert not problems, "\n".join(problems)
    failed = [e for e in session.exchanges if e.status >= 400 and e.status not in allow_status]
    assert not failed, [(e.path, e.status, e.response_body[:300]) for e in failed]


def clean_session(
    session: Session, *, allow_status: frozenset[int] = frozenset(), background_tail: bool = False
) -> None:
    """The run finished by itself with the scenario's answer, and nothing went wrong on the way.

    `background_tail`: Claude Code 2.0 in `-p` mode, after a session that started a
    background command, prints a second, empty result (`error_during_execution`, no turns,
    no API time: nothing reached `oas`) and exits 1; that tail is allowed, nothing else.
    """
    transcript, scenario = session.transcript, session.scenario
    context = transcript.describe()
    assert not transcript.timed_out, f"Claude Code hung:\n{context}"
    results = [e for e in transcript.events if e.get("type") == "result"]
    if (
        background_tail
        and len(results) == 2
        and results[1].get("num_turns") == 0
        and results[1].get("duration_api_ms") == 0
    ):
        assert transcript.returncode == 1, context
        result = results[0]
    else:
        assert transcript.returncode == 0, context
        result = transcript.result
    assert not scenario.model.problems, f"{scenario.model.problems}\n{context}"
    assert result["subtype"] == "success" and not result["is_error"], context
    assert scenario.answer in result["result"], context
    assert "API Error" not in transcript.stdout, context
    assert len(scenario.model.main_requests) == len(scenario.model.steps), context

    uses = {b["id"]: b for b in transcript.tool_uses}
    results = {b["tool_use_id"]: b for b in transcript.tool_results}
    assert set(uses) == set(results), f"unanswered tool calls: {set(uses) ^ set(results)}"

    for path, content in scenario.files.items():
        assert path.read_text() == content, path
    problems = [p for check in scenario.checks if (p := check()) is not None]
    assert not problems, problems
    answered_validly(session, allow_status=allow_status)
