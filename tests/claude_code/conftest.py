"""Fixtures for driving real Claude Code releases through `oas`.

`claude_code` is parametrized over the pinned releases (installed from npm on first use),
`recorded_oas` is an untracked `oas` whose every HTTP exchange is kept, and `session`
runs one scenario end to end: the scripted model answers at the upstream, Claude Code
runs headless in a fresh HOME and working directory.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.claude_code.scenarios import Scenario
from tests.conftest import make_settings
from tests.support.claude_code import VERSIONS, ClaudeCode, Transcript
from tests.support.recording import Exchange, RecordingApp
from tests.support.server import ThreadedServer
from tests.support.upstream import ScriptedUpstream

_installed: dict[str, ClaudeCode] = {}


@pytest.fixture(params=VERSIONS, ids=[f"cc{v}" for v in VERSIONS])
def claude_code(request: pytest.FixtureRequest) -> ClaudeCode:
    """One pinned release; the npm install happens once per machine (cached)."""
    version = request.param
    if version not in _installed:
        _installed[version] = ClaudeCode.installed(version)
    return _installed[version]


class RecordedOas:
    """An `oas` HTTP front whose exchanges are recorded, on a given runtime."""

    def __init__(self, settings: object, runtime: object) -> None:
        from src.api.app import create_app

        self.runtime = runtime
        self.app = RecordingApp(create_app(settings, runtime))
        self.server = ThreadedServer(self.app).start()
        self.url = self.server.url

    @property
    def exchanges(self) -> list[Exchange]:
        return self.app.snapshot()

    def stop(self) -> None:
        self.server.stop()


@pytest.fixture(scope="session")
def recorded_oas_server(upstream_server: ScriptedUpstream, session_dir: Path) -> Iterator[RecordedOas]:
    from src.coordinators.runtime import Runtime

    runtime = Runtime.create(make_settings(upstream_server, session_dir / "oas-claude-code"))
    runtime.start()
    front = RecordedOas(runtime.settings, runtime)
    yield front
    front.stop()
    asyncio.run(runtime.aclose())


@pytest.fixture
def recorded_oas(recorded_oas_server: RecordedOas, upstream: ScriptedUpstream) -> RecordedOas:
    """The recorded `oas`, its record emptied for this test (and the upstream reset)."""
    recorded_oas_server.app.clear()
    return recorded_oas_server


@dataclass
class Session:
    """One finished Claude Code run: what it printed and what went over the wire."""

    scenario: Scenario
    transcript: Transcript
    exchanges: list[Exchange]
    upstream_requests: list[dict]


@pytest.fixture
def workspace(tmp_path: Path) -> tuple[Path, Path]:
    """A fresh (HOME, working directory) pair."""
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    return home, work


@pytest.fixture
def run_session(claude_code: ClaudeCode, recorded_oas: RecordedOas, upstream: ScriptedUpstream,
                workspace: tuple[Path, Path]) -> Callable[..., Session]:
    """`run_session(scenario_factory)`: build the scenario in the workspace and run it."""
    home, work = workspace

    def run(factory: Callable[[Path], Scenario], *, args: tuple[str, ...] = (),
            env: dict[str, str] | None = None, timeout: float = 120.0) -> Session:
        scenario = factory(work)
        upstream.default = scenario.model
        transcript = claude_code.run(scenario.prompt, base_url=recorded_oas.url, home=home, cwd=work,
                                     args=args, env={**scenario.env, **(env or {})}, timeout=timeout)
        return Session(scenario, transcript, recorded_oas.exchanges, list(upstream.requests))

    return run
