"""Fixtures for driving real Claude Code releases through `oas`.

`claude_code` is parametrized over the pinned releases (installed from npm on first use),
`recorded_oas` is an untracked `oas` whose every HTTP exchange is kept, and `run_session`
runs one scenario end to end: the scripted model answers at the upstream, Claude Code
runs headless in a fresh HOME and working directory.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.claude_code.session import Session, run_scenario
from tests.conftest import make_settings
from tests.support.claude_code import VERSIONS, ClaudeCode
from tests.support.recording import RecordedOas
from tests.support.upstream import ScriptedUpstream

_installed: dict[str, ClaudeCode] = {}


@pytest.fixture(params=VERSIONS, ids=[f"cc{v}" for v in VERSIONS])
def claude_code(request: pytest.FixtureRequest) -> ClaudeCode:
    """One pinned release; the npm install happens once per machine (cached)."""
    version = request.param
    if version not in _installed:
        _installed[version] = ClaudeCode.installed(version)
    return _installed[version]


@pytest.fixture(scope="session")
def recorded_oas_server(
    upstream_server: ScriptedUpstream, session_dir: Path
) -> Iterator[RecordedOas]:
    from src.coordinators.runtime import Runtime

    runtime = Runtime.create(make_settings(upstream_server, session_dir / "oas-claude-code"))
    runtime.start()
    runtime.services.tokenizers.join(120)  # as a server that has been up for a few seconds
    front = RecordedOas(runtime.settings, runtime)
    yield front
    front.stop()
    asyncio.run(runtime.aclose())


@pytest.fixture
def recorded_oas(recorded_oas_server: RecordedOas, upstream: ScriptedUpstream) -> RecordedOas:
    """The recorded untracked `oas`, its record emptied (and the upstream reset) for this test."""
    recorded_oas_server.app.clear()
    return recorded_oas_server


@pytest.fixture
def workspace(tmp_path: Path) -> tuple[Path, Path]:
    """A fresh (HOME, working directory) pair."""
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    return home, work


@pytest.fixture
def run_session(
    claude_code: ClaudeCode,
    recorded_oas: RecordedOas,
    upstream: ScriptedUpstream,
    workspace: tuple[Path, Path],
) -> Callable[..., Session]:
    """`run_session(scenario_factory, args=..., env=..., unset=...)` on the recorded oas."""
    home, work = workspace

    def run(factory, **options) -> Session:
        return run_scenario(
            factory,
            claude_code=claude_code,
            front=recorded_oas,
            upstream=upstream,
            home=home,
            work=work,
            **options,
        )

    return run


@pytest.fixture(scope="session")
def tool_matrix() -> Iterator[object]:
    """The release x tool matrix this run produces; written to `$OAS_CLAUDE_CODE_MATRIX`."""
    import os

    from tests.claude_code.tools import Matrix

    matrix = Matrix()
    yield matrix
    if target := os.environ.get("OAS_CLAUDE_CODE_MATRIX"):
        matrix.write(Path(target))
