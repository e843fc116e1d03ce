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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "serve":
        from src.cli.serve import serve

        return serve(args)
    parser.print_help(sys.stderr)
    return 2
