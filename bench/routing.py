"""CPU time to choose a route: 50 rules, a Claude Code-sized request, the last rule wins.

    .venv/bin/python -m bench.routing [--rules 50] [--iterations 20000]

The worst case for a table of `--rules` rules: every rule is tried (model globs, client
names, thinking, tools by name, web search, stream) before the last one matches. Each
iteration is one request's whole decision, as `resolve-model` makes it: facts read
afresh, rules tried, the route built. The bench suite calls `route_choice`; the goal is
<= 20 us.

`images` and `documents` conditions cost one more thing, whatever the number of rules
that ask: a read of every content block of the conversation (once per request). That is
the second figure, `scan_us`, for the same 100-turn request.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.bodies import claude_code_request


def _config(rules: int) -> str:
    kinds = [
        "{model: 'claude-opus-*'}",
        "{client: [ci, nightly]}",
        "{thinking: true}",
        "{tools: WebFetch}",
        "{stream: true}",
        "{web_search: true, stream: true}",
        "{model: ['*-haiku-*', 'small'], tools: true}",
    ]
    lines = ["routes:"]
    for i in range(rules - 1):
        lines.append(f"  - {{name: r{i}, when: {kinds[i % len(kinds)]}, model: x/m{i}}}")
    lines.append("  - {name: last, when: {model: 'claude-sonnet-*', tools: Tool3}, model: x/last}")
    return "\n".join(lines) + "\n"


def route_choice(rules: int = 50, iterations: int = 20_000) -> dict[str, Any]:
    """Microseconds of CPU (and of wall time) per route choice."""
    from src.core.settings import Settings
    from src.tasks.routing import choose_route

    directory = Path(tempfile.mkdtemp(prefix="oas-bench-routing-"))
    config = directory / "oas.yaml"
    config.write_text(_config(rules))
    settings = Settings(_env_file=None, config_file=config, data_dir=directory)  # type: ignore[call-arg]
    body = claude_code_request(100)
    route = choose_route(body, settings, "alice")
    assert route.rule == "last", route
    for _ in range(200):  # warm: compiled table cached, code paths hot
        choose_route(body, settings, "alice")
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(iterations):
        choose_route(body, settings, "alice")
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    from src.tasks.routes.features import block_kinds

    scans = max(1, iterations // 10)
    scan = time.process_time()
    for _ in range(scans):
        block_kinds(body["messages"])
    scan = time.process_time() - scan
    return {
        "rules": rules,
        "iterations": iterations,
        "messages": len(body["messages"]),
        "us_per_choice": round(cpu / iterations * 1e6, 2),
        "wall_us_per_choice": round(wall / iterations * 1e6, 2),
        "scan_us": round(scan / scans * 1e6, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rules", type=int, default=50)
    parser.add_argument("--iterations", type=int, default=20_000)
    args = parser.parse_args()
    print(route_choice(args.rules, args.iterations))


if __name__ == "__main__":
    main()
