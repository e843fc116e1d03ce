"""`oas runs`: recent flow runs (failed ones by default) with their errors, for the terminal.

It lists what `oas replay` can replay: `messages` runs and replays of them. Token counts
(`count-tokens` runs) are left out: they call no model, so there is nothing to replay.
"""

from __future__ import annotations

import argparse
from datetime import datetime

import httpx

from src.cli.replay import prefect_api_url

REPLAYABLE_FLOWS = ("messages",)  # as src.flows.stored, without importing Prefect


def list_runs(args: argparse.Namespace) -> int:
    states = None if args.all else ["FAILED", "CRASHED", "CANCELLED"]
    body: dict[str, object] = {
        "sort": "START_TIME_DESC",
        "limit": args.limit,
        "flows": {"name": {"any_": [*REPLAYABLE_FLOWS, "replay"]}},
    }
    if states:
        body["flow_runs"] = {"state": {"type": {"any_": states}}}
    try:
        runs = httpx.post(f"{prefect_api_url()}/flow_runs/filter", json=body, timeout=10).json()
    except httpx.HTTPError as exc:
        print(f"cannot reach the Prefect API at {prefect_api_url()}: {exc}")
        return 1
    if not runs:
        print("no failed runs" if states else "no runs")
        return 0
    for run in runs:
        started = run.get("start_time") or run.get("expected_start_time") or ""
        when = datetime.fromisoformat(started).strftime("%Y-%m-%d %H:%M:%S") if started else "-"
        message = ((run.get("state") or {}).get("message") or "").replace("\n", " ")
        print(f"{run['id']}  {when}  {run['state_type']:<9}  {run['name']}")
        if message:
            print(f"    {message[:200]}")
    print("\nreplay one with: oas replay <id>  (optionally --model <model>)")
    return 0
