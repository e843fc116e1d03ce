"""The `oas` command line. Each subcommand lives in its own module and imports lazily,
so `oas --help` answers at once."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from src import __version__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="oas",
        description="An Anthropic Messages API server that answers with any model on "
        "OpenRouter; every request is a Prefect flow run.",
    )
    parser.add_argument("--version", action="version", version=f"oas {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    serve = sub.add_parser(
        "serve",
        help="run the server (and a local Prefect server unless PREFECT_API_URL is set)",
        description="Listen on OAS_HOST:OAS_PORT (127.0.0.1:8082). Without PREFECT_API_URL, "
        "start a local Prefect server (dashboard on 127.0.0.1:4200) and stop it on exit.",
    )
    serve.add_argument("--host", help="listen address (default: OAS_HOST or 127.0.0.1)")
    serve.add_argument("--port", type=int, help="listen port (default: OAS_PORT or 8082)")
    serve.add_argument("--no-prefect", action="store_true",
                       help="serve untracked: start no Prefect server, record no runs")

    replay = sub.add_parser(
        "replay", help="run a recorded request again as a new flow run",
        description="Load the request of flow run FLOW_RUN_ID from the payload store and run it "
        "again with today's configuration, as a new flow run tagged 'replay'. Prints the "
        "answer (streamed if the original streamed); exits 1 if it fails again.",
    )
    replay.add_argument("flow_run_id", metavar="FLOW_RUN_ID")
    replay.add_argument("--model", help="answer with this model instead of the original's")
    replay.add_argument("-v", "--verbose", action="store_true", help="show Prefect's log lines")

    runs = sub.add_parser("runs", help="list recent failed runs with their errors")
    runs.add_argument("--all", action="store_true", help="all runs, not only failed ones")
    runs.add_argument("--limit", type=int, default=20, help="how many (default 20)")

    prune = sub.add_parser("prune", help="delete stored request payloads past their retention")
    prune.add_argument("--days", type=float,
                       help="keep this many days (default OAS_PAYLOAD_RETENTION_DAYS, 30)")

    from src.cli.mcp import add_parser as add_mcp_parser

    add_mcp_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "serve":
        from src.cli.serve import serve

        return serve(args)
    if args.command == "replay":
        from src.cli.replay import replay

        return replay(args)
    if args.command == "runs":
        from src.cli.runs import list_runs

        return list_runs(args)
    if args.command == "prune":
        from src.cli.prune import prune

        return prune(args)
    if args.command == "mcp":
        from src.cli.mcp import run as run_mcp

        return run_mcp(args)
    parser.print_help(sys.stderr)
    return 2
