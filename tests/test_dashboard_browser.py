"""The Prefect dashboard as a person uses it, in a real browser (Debian's chromium).

`oas serve` starts the way a user starts it (its own Prefect, nothing set from outside), a
real Claude Code session goes through it, and the OpenRouter account runs out of credits
half way: the session ends on a 402. Then, in the dashboard: find the session's runs by
its tag, open the failed run and read its error, see the upstream's error in its Logs tab,
top the credits up and click Retry, see the run end Completed, and find the session on the
Artifacts page.

With `OAS_SCREENSHOTS=docs/images` the test saves the screenshots of docs/05 and docs/06.
"""

from __future__ import annotations

import re
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.claude_code import scenarios
from tests.conftest import UPSTREAM_KEY
from tests.support.claude_code import VERSIONS, ClaudeCode
from tests.support.dashboard import INSTALL_HINT, VIEWPORT, Dashboard, chromium_path
from tests.support.oas_serve import OasServe
from tests.support.upstream import ScriptedUpstream

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.claude_code]

CLAUDE_CODE = VERSIONS[-1]  # the newest pinned release: what a new user installs


@pytest.fixture
def dashboard_page() -> Iterator[object]:
    """A headless Chromium tab (Playwright driving Debian's chromium); closed at the end."""
    executable = chromium_path()
    if executable is None:
        pytest.skip(f"chromium is not installed: {INSTALL_HINT}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=executable, headless=True, args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            yield browser.new_page(viewport=VIEWPORT)
        finally:
            browser.close()


@pytest.fixture
def served(upstream: ScriptedUpstream, session_dir: Path) -> Iterator[OasServe]:
    """`oas serve` with its own Prefect, answering from the scripted upstream.

    Its directory is not under pytest's tmp_path: as root, the database runs as a system
    user that must traverse the parents, and every pytest run on the machine resets
    /tmp/pytest-of-root to 0700."""
    serve = OasServe(
        Path(tempfile.mkdtemp(prefix="serve-", dir=session_dir)), upstream.base_url, UPSTREAM_KEY
    )
    try:
        yield serve.start()
    finally:
        serve.stop()


@pytest.mark.timeout(900)  # oas serve's start, a Claude Code session, two runs of a flow
def test_a_person_finds_a_failed_run_of_a_session_reads_it_and_retries_it(
    dashboard_page, served: OasServe, upstream: ScriptedUpstream, tmp_path: Path
):
    from playwright.sync_api import expect

    # A Claude Code session: the note is written, then the next turn hits a 402.
    claude_code = ClaudeCode.installed(CLAUDE_CODE)
    topped_up = threading.Event()
    work = tmp_path / "work"
    work.mkdir()
    scenario = scenarios.credits_run_out(work, topped_up=topped_up)
    upstream.default = scenario.model
    transcript = claude_code.run(
        scenario.prompt, base_url=served.url, home=tmp_path / "home", cwd=work, timeout=180
    )
    assert not transcript.timed_out, transcript.describe()
    assert transcript.result["is_error"], transcript.describe()
    assert "Insufficient credits" in transcript.stdout, transcript.describe()
    assert not scenario.model.problems, scenario.model.problems
    for path, content in scenario.files.items():
        assert path.read_text() == content
    session = transcript.session_id

    dash = Dashboard(dashboard_page, served.dashboard)
    page = dash.page

    # 1. The session's runs: Runs, then its tag in the Tags filter.
    dash.open()
    dash.runs()
    dash.filter_by_tag(f"session:{session}")
    dash.wait_for_runs(1, state="Failed")
    dash.wait_for_runs(2)  # the turn that wrote the note, at least, went well
    dash.shot("dashboard-runs.png")
    session_runs = page.url

    # 2. A turn that went well (the stream whose answer was the Write call): its steps, and
    #    its summary artifact.
    dash.open_run(dash.run_cards("Completed").filter(has_text="· stream ·").first)
    dash.shot("dashboard-flow-run.png")
    steps = dash.tab("Task Runs")
    for step in ("call-upstream", "stream-response", "record-usage"):
        expect(steps).to_contain_text(step)
    dash.tab("Artifacts").get_by_text("Request summary").first.click()
    expect(page).to_have_url(re.compile(r"/artifacts/artifact/"))
    summary = page.get_by_role("table").first
    expect(summary.get_by_role("cell", name="tool calls", exact=True)).to_be_visible()
    expect(summary.get_by_role("cell", name="Write", exact=True)).to_be_visible()
    dash.shot("dashboard-artifact.png")
    page.goto(session_runs)

    # 3. The failed run: its error, as the client got it, is the run's state message.
    run_id = dash.open_run(dash.wait_for_runs(1, state="Failed").first)
    message = dash.state_message()
    assert message.startswith("billing_error: Insufficient credits"), message
    details = dash.tab("Details")
    expect(details).to_contain_text(f"session:{session}")
    expect(details).to_contain_text("error:billing_error")
    dash.shot("dashboard-failed-run.png", height=1000)

    # 4. Its Logs tab has the upstream's own words.
    logs = dash.wait_for_text("Logs", "Insufficient credits")
    expect(logs).not_to_contain_text(UPSTREAM_KEY)
    dash.shot("dashboard-logs.png")

    # 5. Credits topped up, one click on Retry: the same run runs again and completes.
    asked = len(upstream.requests)
    topped_up.set()
    dash.retry()
    dash.wait_for_state("Completed")
    assert f"/runs/flow-run/{run_id}" in page.url  # the same run, not a new one
    assert len(upstream.requests) > asked  # it really asked the upstream again
    page.reload()  # the graph then draws the retry's task runs too
    expect(dash.tab("Task Runs")).to_contain_text("load-payload")
    dash.shot("dashboard-retry-completed.png")

    # 6. The same request replayed onto another model, from the `replay` deployment's form.
    asked = len(upstream.requests)
    replay_id = dash.custom_run(
        "replay",
        {"flow_run_id": run_id, "model": "openai/gpt-4o"},
        shot="dashboard-replay-deployment.png",
    )
    assert replay_id != run_id
    dash.wait_for_state("Completed")
    assert upstream.requests[asked:] and upstream.requests[-1]["model"] == "openai/gpt-4o"
    details = dash.tab("Details")
    expect(details).to_contain_text(f"replay-of:{run_id}")
    dash.shot("dashboard-replay-run.png")

    # 7. The session on the Artifacts page, with its running totals.
    dash.artifacts()
    entry = dash.wait_until(lambda: page.get_by_role("link", name=f"session-{session}"))
    dash.shot("dashboard-artifacts.png")
    entry.click()  # its versions, newest first: open the latest
    page.locator("a[href*='/artifacts/artifact/']").first.click()
    totals = page.get_by_role("table").first
    expect(totals.get_by_role("cell", name="requests", exact=True)).to_be_visible()
    expect(totals.get_by_role("cell", name=session, exact=True)).to_be_visible()
    dash.shot("dashboard-session-artifact.png")
