"""The parts of what a run shows on the dashboard, without a Prefect server: its log lines
(bounded, masked), its summary's rows, and a session's artifact key and totals."""

from __future__ import annotations

import logging

import structlog

from src.tracking.artifact import render_summary
from src.tracking.logs import install, log_records, render_line
from src.tracking.run import FAILED, MAX_INFO_LINES, MAX_LOG_LINES, Run
from src.tracking.sessions import Sessions, SessionTotals, artifact_key


def _run(upstream_model: str | None = None, **summary: object) -> Run:
    run = Run(
        "messages",
        "big · sync · abc",
        {"request_id": "req_abc", "model": "big", "session_id": "s1"},
    )
    run.upstream_model = upstream_model
    run.summary.update(summary)
    return run


def test_lines_logged_inside_a_run_are_kept_in_it_masked():
    install()
    run = _run()
    log = structlog.get_logger("oas.test")
    with run.current():
        log.warning("upstream said", error="bad key sk-or-v1-abcdefghijklmnop")
    log.info("not in any run")
    assert len(run.logs) == 1
    line = run.logs[0]
    assert line.level == logging.WARNING
    assert line.message.startswith("upstream said error='bad key sk-or-…[masked]'")
    assert "abcdefghijklmnop" not in line.message


def test_a_run_keeps_a_bounded_number_of_lines_warnings_first():
    run = _run()
    for n in range(MAX_INFO_LINES + 50):
        run.add_log(logging.INFO, "oas.test", f"info {n}")
    run.add_log(logging.ERROR, "oas.test", "the error that matters")
    assert len(run.logs) == MAX_INFO_LINES + 1
    assert run.logs[-1].message == "the error that matters"
    for _ in range(MAX_LOG_LINES):
        run.add_log(logging.WARNING, "oas.test", "again")
    assert len(run.logs) == MAX_LOG_LINES
    records = log_records(run, "flow-run-id")
    assert records[-1]["message"] == f"{run.logs_dropped} more log lines of this run not kept"
    assert all(r["flow_run_id"] == "flow-run-id" for r in records)


def test_a_huge_line_is_cut():
    text = render_line({"event": "response body", "payload": "x" * 100_000})
    assert len(text) < 33_000 and text.endswith("more characters]")


def test_the_summary_shows_server_tools_container_and_argument_problems():
    summary = render_summary(
        _run(
            server_tools=["web_fetch: https://example.com", "bash: ls"],
            container="container_abc",
            sandbox="namespaces",
            tool_argument_problems={"Edit": ["repaired invalid JSON"]},
            attempts=["m: overloaded_error (529)", "m: ok"],
        )
    )
    assert "| server tools | web_fetch: https://example.com; bash: ls |" in summary
    assert "| code execution container | container_abc |" in summary
    assert "| isolation tier | namespaces |" in summary
    assert "| tool argument problems | Edit: repaired invalid JSON |" in summary
    assert "| attempts | m: overloaded_error (529); m: ok |" in summary


def test_session_keys_use_only_what_prefect_allows():
    assert artifact_key("0b6f1c8e-AAAA-4a2b") == "session-0b6f1c8e-aaaa-4a2b"
    assert artifact_key("user_abc__session.1") == "session-user-abc-session-1"
    assert artifact_key("___") == "session-unknown"


def test_session_totals_survive_a_round_trip_through_metadata():
    sessions = Sessions()
    for cost, state in ((0.5, "COMPLETED"), (0.25, FAILED)):
        run = _run(
            usage={"input_tokens": 10, "output_tokens": 2, "cache_read_input_tokens": 5},
            cost=cost,
            upstream_model="x/y",
        )
        run.state = state
        sessions.add(run)
    totals = sessions.totals["s1"]
    again = SessionTotals.from_metadata(totals.metadata())
    assert again == totals
    assert (again.requests, again.errors, again.input_tokens, again.cost) == (2, 1, 20, 0.75)
    assert again.models == {"x/y": 2}
    assert SessionTotals.from_metadata({"totals": "{cut sh"}) == SessionTotals()
