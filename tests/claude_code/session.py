"""One scenario run end to end: Claude Code at one end, the scripted model at the other."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.claude_code.scenarios import Scenario
from tests.support.claude_code import ClaudeCode, Transcript
from tests.support.recording import Exchange, RecordedOas
from tests.support.upstream import ScriptedUpstream


@dataclass
class Session:
    """A finished Claude Code run: what it printed and what went over the wire."""

    scenario: Scenario
    transcript: Transcript
    exchanges: list[Exchange]
    upstream_requests: list[dict[str, Any]]


def run_scenario(
    factory: Callable[[Path], Scenario],
    *,
    claude_code: ClaudeCode,
    front: RecordedOas,
    upstream: ScriptedUpstream,
    home: Path,
    work: Path,
    args: tuple[str, ...] = (),
    env: dict[str, str] | None = None,
    unset: tuple[str, ...] = (),
    timeout: float = 120.0,
) -> Session:
    """Build the scenario in `work`, let its model answer at the upstream, run Claude Code."""
    scenario = factory(work)
    front.app.clear()
    upstream.requests.clear()
    upstream.default = scenario.model
    transcript = claude_code.run(
        scenario.prompt,
        base_url=front.url,
        home=home,
        cwd=work,
        args=args,
        env={**scenario.env, **(env or {})},
        unset=unset,
        timeout=timeout,
    )
    return Session(scenario, transcript, front.exchanges, list(upstream.requests))
