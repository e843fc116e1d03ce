"""`oas mcp list` and `oas mcp status`: the managed MCP servers from the terminal.

`list` starts each server declared in the OAS_CONFIG file, shows the tools it offers (under
the function names models see) and stops it again: a check that the configuration works,
with or without `oas serve` running. `status` asks the running server (`/health/detailed`)
how its managed servers are doing: running, restarting (with the last error), restarts.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from typing import Any

from src.core.settings import Settings, get_settings


def add_parser(sub: Any) -> None:
    mcp = sub.add_parser(
        "mcp",
        help="the managed MCP servers of the OAS_CONFIG file",
        description="Managed MCP servers (the mcp_servers section of the OAS_CONFIG file):\n"
        "list starts each one and prints its tools; status asks the running oas.",
        epilog="examples:\n  oas mcp list\n  oas mcp status --json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = mcp.add_subparsers(
        dest="mcp_command", metavar="ACTION", required=True, help="list or status"
    )
    listing = actions.add_parser("list", help="start each server, list its tools, stop it")
    listing.add_argument(
        "--timeout",
        type=float,
        default=30.0,
        help="seconds to wait for the servers to start (default 30)",
    )
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    status = actions.add_parser("status", help="the servers' state in the running oas")
    status.add_argument("--json", action="store_true", help="machine-readable output")


def run(args: argparse.Namespace) -> int:
    from src.core.logging import configure_logging

    settings = get_settings()
    configure_logging(settings.log_level, settings.log_format)  # logs to stderr, output to stdout
    if args.mcp_command == "list":
        return asyncio.run(_list(settings, args.timeout, args.json))
    return _status(settings, args.json)


async def _list(settings: Settings, timeout: float, as_json: bool) -> int:
    from src.core.mcp_config import McpConfigError
    from src.services.managed_mcp import ManagedMcpServers
    from src.services.mcp_client import function_name

    try:
        servers = ManagedMcpServers.from_settings(settings)
    except McpConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    if not servers:
        print(
            "No managed MCP servers: add an mcp_servers section to the file named by "
            "OAS_CONFIG (see docs/07-server-tools-and-mcp.md).",
            file=sys.stderr,
        )
        return 1
    servers.health_interval = 3600  # one start each, no restarts while listing
    servers.start()
    try:
        await servers.wait_started(timeout)
        listing = []
        for name, server in servers.servers.items():
            allowed = server.config.allowed_tools
            tools = [
                {
                    "name": t.name,
                    "function": function_name(name, t.name),
                    "description": (t.description or "").strip().splitlines()[0:1],
                }
                for t in server.tools
                if allowed is None or t.name in allowed
            ]
            listing.append({**server.snapshot(), "tools": tools})
    finally:
        await servers.aclose()
    if as_json:
        print(json.dumps(listing, indent=2))
    else:
        for entry in listing:
            print(
                f"{entry['name']}  ({entry['transport']}: {entry['where']}, "
                f"offer: {entry['offer']})"
            )
            if entry["state"] != "running":
                print(f"  not running: {entry['last_error'] or entry['state']}")
            for tool in entry["tools"]:
                description = tool["description"][0] if tool["description"] else ""
                print(f"  {tool['function']:<48} {description[:70]}")
    return 0 if all(e["state"] == "running" for e in listing) else 1


def _status(settings: Settings, as_json: bool) -> int:
    import httpx

    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::") else settings.host
    url = f"http://{host}:{settings.port}/health/detailed"
    headers = {}
    if settings.api_keys:
        headers["x-api-key"] = settings.api_keys[0].get_secret_value()
    try:
        response = httpx.get(url, headers=headers, timeout=5.0)
        data = response.json()
    except (httpx.HTTPError, ValueError) as exc:
        print(
            f"oas is not answering at {url} ({type(exc).__name__}); `oas mcp list` checks "
            "the servers without it.",
            file=sys.stderr,
        )
        return 1
    states = data.get("mcp_servers") if isinstance(data, dict) else None
    if states is None:
        print(f"{url} does not report MCP servers (HTTP {response.status_code}).", file=sys.stderr)
        return 1
    if as_json:
        print(json.dumps(states, indent=2))
        return 0
    if not states:
        print("oas runs no managed MCP servers.")
        return 0
    now = time.time()
    for state in states:
        since = _ago(now - state.get("since", now))
        line = (
            f"{state['name']:<20} {state['state']:<11} {since:>8}  "
            f"{len(state.get('tools') or [])} tools  {state.get('restarts', 0)} restarts"
        )
        print(line)
        if state.get("last_error") and state["state"] != "running":
            print(f"  last error: {state['last_error']}")
    return 0 if all(s.get("healthy") for s in states) else 1


def _ago(seconds: float) -> str:
    if seconds < 120:
        return f"{int(seconds)}s"
    if seconds < 7200:
        return f"{int(seconds // 60)}m"
    return f"{int(seconds // 3600)}h"
