"""The `oas` command line. Each subcommand lives in its own module and imports lazily,
so `oas --help` answers at once."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from src import __version__

_FORMAT = argparse.RawDescriptionHelpFormatter

MAIN_EPILOG = """\
configuration:
  Environment variables, or lines in a .env file in the working directory
  (OPENROUTER_API_KEY, OAS_PORT, OAS_BIG_MODEL, PREFECT_API_URL, ...).
  `oas config` shows every setting, its value and where it came from;
  `oas doctor` checks that everything `oas serve` needs is in place.

examples:
  oas serve                      # 127.0.0.1:8082, Prefect dashboard on 127.0.0.1:4200
  ANTHROPIC_BASE_URL=http://127.0.0.1:8082 ANTHROPIC_API_KEY=x claude
  oas runs                       # recent failed requests
  oas replay <flow-run-id>       # run one again after fixing its cause

documentation: docs/ in the source tree, starting at docs/01-getting-started.md
"""


def _subcommand(
    sub: argparse._SubParsersAction, name: str, help: str, description: str, epilog: str = ""
) -> argparse.ArgumentParser:
    return sub.add_parser(
        name, help=help, description=description, epilog=epilog or None, formatter_class=_FORMAT
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="oas",
        description="An Anthropic Messages API server that answers with any model on "
        "OpenRouter; every request is a Prefect flow run.",
        epilog=MAIN_EPILOG,
        formatter_class=_FORMAT,
    )
    parser.add_argument("--version", action="version", version=f"oas {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    serve = _subcommand(
        sub,
        "serve",
        help="run the server (and a local Prefect server unless PREFECT_API_URL is set)",
        description="Listen on OAS_HOST:OAS_PORT (127.0.0.1:8082) for Anthropic Messages API "
        "requests.\nWithout PREFECT_API_URL, also start a local Prefect server (dashboard on "
        "127.0.0.1:OAS_PREFECT_PORT,\n4200) on a private PostgreSQL under OAS_DATA_DIR, and "
        "stop both on Ctrl-C or SIGTERM.\nWith PREFECT_API_URL, record runs there and start "
        "nothing else.",
        epilog="examples:\n"
        "  oas serve\n"
        "  oas serve --host 0.0.0.0 --port 9000      # set OAS_API_KEYS before you do this\n"
        "  PREFECT_API_URL=http://prefect:4200/api oas serve\n"
        "  oas serve --no-prefect                    # no tracking at all\n"
        "  oas serve --reload                        # development: restart on code changes",
    )
    serve.add_argument("--host", help="listen address (default: OAS_HOST or 127.0.0.1)")
    serve.add_argument("--port", type=int, help="listen port (default: OAS_PORT or 8082)")
    serve.add_argument(
        "--no-prefect",
        action="store_true",
        help="serve untracked: start no Prefect server, record no runs",
    )
    serve.add_argument(
        "--reload",
        action="store_true",
        help="restart the HTTP server when the source changes; the Prefect "
        "server keeps running (refused with OAS_ENV=production)",
    )

    replay = _subcommand(
        sub,
        "replay",
        help="run a recorded request again as a new flow run",
        description="Load the request of flow run FLOW_RUN_ID from the payload store and run it "
        "again with\ntoday's configuration, as a new flow run tagged 'replay' and "
        "'replay-of:FLOW_RUN_ID'.\nPrints the answer (streamed if the original streamed); "
        "exits 1 if it fails again.\nReads PREFECT_API_URL (default: the local server of "
        "`oas serve`) and OAS_PAYLOAD_DIR.",
        epilog="examples:\n"
        "  oas runs                                       # find the id\n"
        "  oas replay 0a1b2c3d-...                        # same model\n"
        "  oas replay 0a1b2c3d-... --model openai/gpt-4o  # another model",
    )
    replay.add_argument(
        "flow_run_id",
        metavar="FLOW_RUN_ID",
        help="the id of the original flow run (from the dashboard or `oas runs`)",
    )
    replay.add_argument("--model", help="answer with this model instead of the original's")
    replay.add_argument(
        "-v", "--verbose", action="store_true", help="show Prefect's log lines and tracebacks"
    )

    runs = _subcommand(
        sub,
        "runs",
        help="list recent failed runs with their errors",
        description="List the most recent flow runs of oas that `oas replay` can run again "
        "(messages,\nreplay) that failed, crashed or were cancelled, newest first, with their "
        "error message.\n"
        "Reads PREFECT_API_URL (default: the local server of `oas serve`).",
        epilog="examples:\n  oas runs\n  oas runs --all --limit 50",
    )
    runs.add_argument("--all", action="store_true", help="all runs, not only failed ones")
    runs.add_argument("--limit", type=int, default=20, help="how many (default 20)")

    prune = _subcommand(
        sub,
        "prune",
        help="delete stored request payloads past their retention",
        description="Delete the request payloads (kept for `oas replay`) older than the "
        "retention,\nthen the blobs no remaining request uses. Flow runs in Prefect are not "
        "touched.\nSafe to run while `oas serve` runs, e.g. daily from cron.",
        epilog="examples:\n  oas prune\n  oas prune --days 7",
    )
    prune.add_argument(
        "--days", type=float, help="keep this many days (default OAS_PAYLOAD_RETENTION_DAYS, 30)"
    )

    config = _subcommand(
        sub,
        "config",
        help="show the effective configuration (secrets masked)",
        description="Print every setting `oas serve` would use: environment variable, "
        "value and where the\nvalue came from (environment, .env, or default), then what "
        "they add up to. Keys are\nmasked to their first characters; URLs lose their "
        "passwords.",
        epilog="examples:\n  oas config\n  oas config --changed\n  oas config --json\n"
        "  oas config reload              # running servers re-read OAS_CONFIG (SIGHUP)",
    )
    config.add_argument(
        "action",
        nargs="?",
        choices=["show", "reload"],
        default="show",
        help="show (default), or reload: check the OAS_CONFIG file and have "
        "each running `oas serve` apply it",
    )
    config.add_argument(
        "--changed", action="store_true", help="only settings that are not at their default"
    )
    config.add_argument("--json", action="store_true", help="machine-readable output")

    doctor = _subcommand(
        sub,
        "doctor",
        help="check the upstream, Prefect, directories and ports; say what to fix",
        description="Check what `oas serve` needs: the upstream key, that OPENROUTER_BASE_URL "
        "answers and\naccepts the key, that OAS_BIG_MODEL and OAS_SMALL_MODEL are offered, the "
        "Prefect server\n(or that a local one can start), that the data directory is writable "
        "and the port free.\nExits 1 if any check fails.",
        epilog="examples:\n  oas doctor\n  oas doctor --timeout 10 --json",
    )
    doctor.add_argument(
        "--timeout", type=float, default=5.0, help="seconds for each network check (default 5)"
    )
    doctor.add_argument("--json", action="store_true", help="machine-readable output")

    routes = _subcommand(
        sub,
        "routes",
        help="show which route a request would take",
        description="Apply the models table and the routes of OAS_CONFIG to a Messages "
        "request read from a\nJSON file, and print the decision (route, upstream model, "
        "fallbacks) without sending it.",
        epilog="examples:\n  oas routes explain request.json\n"
        "  oas routes explain request.json --client alice --json",
    )
    routes.add_argument("action", choices=["explain"], help="explain: print the decision")
    routes.add_argument("request", help="a JSON file holding a /v1/messages request body")
    routes.add_argument("--client", help="as if sent with this named client's key")
    routes.add_argument("--json", action="store_true", help="machine-readable output")

    usage = _subcommand(
        sub,
        "usage",
        help="spend per client, day and model",
        description="What requests cost, from the spend ledger (OAS_LEDGER_URL, default "
        "SQLite under OAS_DATA_DIR),\nper named client, day (UTC) and upstream model. "
        "Default: this calendar month.",
        epilog="examples:\n  oas usage\n  oas usage --days 7 --client alice\n"
        "  oas usage --sessions          # per Claude Code session\n  oas usage --json",
    )
    usage.add_argument("--days", type=int, help="the last N days instead of this month")
    usage.add_argument("--client", help="only this client")
    usage.add_argument(
        "--sessions",
        action="store_true",
        help="per Claude Code session instead of per day and model",
    )
    usage.add_argument("--json", action="store_true", help="machine-readable output")

    from src.cli.mcp import add_parser as add_mcp_parser

    add_mcp_parser(sub)
    return parser


def _handler(command: str) -> Callable[[argparse.Namespace], int]:
    if command == "serve":
        from src.cli.serve import serve

        return serve
    if command == "replay":
        from src.cli.replay import replay

        return replay
    if command == "runs":
        from src.cli.runs import list_runs

        return list_runs
    if command == "prune":
        from src.cli.prune import prune

        return prune
    if command == "config":
        from src.cli.config import config

        return config
    if command == "routes":
        from src.cli.routes import run as run_routes

        return run_routes
    if command == "usage":
        from src.cli.usage import run as run_usage

        return run_usage
    if command == "doctor":
        from src.cli.doctor import doctor

        return doctor
    if command == "mcp":
        from src.cli.mcp import run as run_mcp

        return run_mcp
    raise KeyError(command)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    from src.core.prefect_env import forbid_ephemeral_server

    forbid_ephemeral_server()  # before any subcommand can import Prefect
    from pydantic import ValidationError

    from src.core.config_file import ConfigError

    try:
        return _handler(args.command)(args)
    except ValidationError as exc:
        print(settings_error(exc), file=sys.stderr)
        return 2
    except ConfigError as exc:
        print(f"oas: cannot start: {exc}", file=sys.stderr)
        return 2


def settings_error(exc: Exception) -> str:
    """A configuration error as lines an operator can act on, without secrets."""
    from src.core.logging import mask_secrets

    lines = ["oas: the configuration is invalid:"]
    for error in exc.errors():  # type: ignore[attr-defined]
        where = ".".join(str(p) for p in error.get("loc", ())) or "settings"
        given = error.get("input")
        shown = (
            f" (got {mask_secrets(str(given))!r})"
            if isinstance(given, (str, int, float)) and "KEY" not in where.upper()
            else ""
        )
        lines.append(f"  {where}: {error.get('msg')}{shown}")
    lines.append("Fix it in the environment or in .env; `oas config` shows the rest.")
    return "\n".join(lines)
