"""`oas replay FLOW_RUN_ID [--model M]`: run a recorded request again as a new flow run."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

from src.core.logging import configure_logging
from src.core.settings import get_settings


def prefect_api_url() -> str:
    """PREFECT_API_URL, or the local server `oas serve` starts."""
    settings = get_settings()
    return settings.prefect_api_url or f"http://127.0.0.1:{settings.prefect_port}/api"


def replay(args: argparse.Namespace) -> int:
    """Print the replayed answer (streamed if the original streamed); 1 if it fails again."""
    settings = get_settings()
    os.environ["PREFECT_API_URL"] = prefect_api_url()
    from prefect import tags

    from src.flows.replay import replay_flow

    configure_logging("WARNING" if not args.verbose else settings.log_level, settings.log_format,
                      prefect=True)
    try:
        with tags("replay"):
            result = asyncio.run(replay_flow(flow_run_id=args.flow_run_id, model=args.model, echo=True))
    except Exception as exc:  # noqa: BLE001 - the operator gets one clear line
        message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
        print(f"replay failed: {message}", file=sys.stderr)
        return 1
    message = result.get("message") or {}
    if message.get("stop_reason"):
        print(f"[stop_reason: {message['stop_reason']}]", file=sys.stderr)
    return 0
