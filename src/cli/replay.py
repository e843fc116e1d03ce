"""`oas replay FLOW_RUN_ID [--model M]`: run a recorded request again as a new flow run.

Quiet by default: the answer on stdout, and on failure one line, `replay failed: <reason>`;
`-v` shows Prefect's log lines and tracebacks.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import traceback

from src.core.logging import configure_logging
from src.core.prefect_env import use_prefect_api
from src.core.settings import get_settings


def prefect_api_url() -> str:
    """PREFECT_API_URL, or the local server `oas serve` starts."""
    settings = get_settings()
    return settings.prefect_api_url or f"http://127.0.0.1:{settings.prefect_port}/api"


def replay(args: argparse.Namespace) -> int:
    """Print the replayed answer (streamed if the original streamed); 1 if it fails again."""
    settings = get_settings()
    use_prefect_api(prefect_api_url())
    from prefect import tags

    from src.flows.replay import replay_flow
    from src.flows.stored import read_original

    configure_logging(
        settings.log_level if args.verbose else "WARNING", settings.log_format, prefect=True
    )
    if not args.verbose:  # Prefect's loggers keep their own levels: quiet the console itself
        for handler in logging.getLogger().handlers:
            handler.setLevel(logging.CRITICAL + 1)
    try:
        asyncio.run(read_original(args.flow_run_id))  # an unknown id starts no replay run
        with tags("replay"):
            result = asyncio.run(
                replay_flow(flow_run_id=args.flow_run_id, model=args.model, echo=True)
            )
    except Exception as exc:
        if args.verbose:
            traceback.print_exc()
        message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
        print(f"replay failed: {message}", file=sys.stderr)
        return 1
    message = result.get("message") or {}
    if message.get("stop_reason"):
        print(f"[stop_reason: {message['stop_reason']}]", file=sys.stderr)
    return 0
