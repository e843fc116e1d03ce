"""Every request of a Claude Code session is a flow run in Prefect, tagged with the session.

Claude Code 2.1 sends `X-Claude-Code-Session-Id`; older releases only put the session id
in `metadata.user_id`, which `oas` reads too, so every release's sessions group the same way.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.claude_code import expect, scenarios
from tests.claude_code.session import run_scenario
from tests.support.prefect_api import PrefectReader
from tests.support.recording import RecordedOas

pytestmark = [pytest.mark.e2e, pytest.mark.claude_code]


@pytest.fixture(scope="module")
def reader(prefect_api: str) -> PrefectReader:
    return PrefectReader(prefect_api)


@pytest.fixture(scope="module")
def tracked_front(tracked_oas) -> Iterator[RecordedOas]:
    """A recorded HTTP front on the tracked oas's runtime (same recorder, same Prefect)."""
    front = RecordedOas(tracked_oas.settings, tracked_oas.runtime)
    yield front
    front.stop()


def test_each_request_of_a_session_is_a_run_tagged_with_it(
    claude_code, tracked_front, upstream, workspace, reader
):
    home, work = workspace
    session = run_scenario(
        scenarios.write_and_run,
        claude_code=claude_code,
        front=tracked_front,
        upstream=upstream,
        home=home,
        work=work,
    )
    expect.clean_session(session)
    session_id = session.transcript.session_id

    messages = [e for e in session.exchanges if e.path == "/v1/messages"]
    assert len(messages) >= len(session.scenario.model.steps)
    if claude_code.major_minor >= (2, 1):
        assert {e.headers.get("x-claude-code-session-id") for e in messages} == {session_id}
    for exchange in messages:
        request_id = exchange.response_headers["request-id"]
        run = reader.flow_run_for_request(request_id, state="COMPLETED")
        assert f"session:{session_id}" in run["tags"], run["tags"]
        assert run["parameters"]["session_id"] == session_id
        assert f"model:{exchange.json()['model']}" in run["tags"]

    tagged = reader.http.post(
        "/flow_runs/filter", json={"flow_runs": {"tags": {"all_": [f"session:{session_id}"]}}}
    ).json()
    assert len(tagged) == len(messages)
