"""`make claude-code-latest`: the newest Claude Code on npm against the pinned ones.

Finds the newest published release (`npm view`), runs one short session of it and of each
pinned release through an in-process `oas`, prints what the newest sends that the pinned
ones do not (request fields, beta headers, tools, kinds of side request), then runs the
Claude Code test suite against the newest release. When it passes, move `PINNED` in
tests/support/claude_code.py to it (and regenerate the docs matrix: `make
claude-code-matrix`).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import tests.conftest  # noqa: F401 - test environment (no keys, local cost map) first
from src.tasks.request_kind import request_kind
from tests.claude_code.tools import offered_tools
from tests.conftest import make_settings
from tests.support.claude_code import PACKAGE, PINNED, ClaudeCode
from tests.support.recording import RecordedOas
from tests.support.upstream import Reply, ScriptedUpstream


def newest() -> str:
    out = subprocess.run(
        ["npm", "view", PACKAGE, "version"], capture_output=True, text=True, check=True, timeout=120
    )
    return out.stdout.strip()


def capture(
    version: str, front: RecordedOas, upstream: ScriptedUpstream, root: Path
) -> dict[str, set[str]]:
    """What one short headless session of `version` sends to `oas`."""
    front.app.clear()
    upstream.default = lambda body: Reply(text="done.")
    ClaudeCode.installed(version).run(
        "Say hi.", base_url=front.url, home=root / version / "h", cwd=root / version / "w"
    )
    messages = [e for e in front.exchanges if e.path == "/v1/messages"]
    bodies: list[dict[str, Any]] = [e.json() for e in messages]
    return {
        "request fields": {k for b in bodies for k in b},
        "beta headers": {
            x for e in messages for x in e.headers.get("anthropic-beta", "").split(",") if x
        },
        "tools": offered_tools(bodies),
        "side requests": {request_kind(b) for b in bodies} - {"main"},
        "paths": {f"{e.method} {e.path}" for e in front.exchanges},
    }


def main() -> int:
    latest = newest()
    print(f"newest {PACKAGE} on npm: {latest}; pinned: {', '.join(PINNED)}")
    upstream = ScriptedUpstream().start()
    root = Path(tempfile.mkdtemp(prefix="oas-cc-latest-"))
    from src.coordinators.runtime import Runtime

    runtime = Runtime.create(make_settings(upstream, root / "oas"))
    runtime.start()
    front = RecordedOas(runtime.settings, runtime)
    try:
        seen = {v: capture(v, front, upstream, root) for v in dict.fromkeys([*PINNED, latest])}
    finally:
        front.stop()
        asyncio.run(runtime.aclose())
        upstream.stop()
    if latest in PINNED:
        print(f"\n{latest} is pinned already: the differences below are against the older ones")
    for version in PINNED:
        if version == latest:
            continue
        print(f"\n{latest} against {version}:")
        for aspect, values in seen[latest].items():
            added, gone = values - seen[version][aspect], seen[version][aspect] - values
            if added or gone:
                print(f"  {aspect}: new {sorted(added)}; no longer {sorted(gone)}")
    env = {**os.environ, "OAS_CLAUDE_CODE_VERSIONS": latest}
    print(f"\nrunning the Claude Code suite against {latest}")
    return subprocess.call(
        [sys.executable, "-m", "pytest", "-m", "claude_code", "-q", "tests/claude_code"], env=env
    )


if __name__ == "__main__":
    sys.exit(main())
