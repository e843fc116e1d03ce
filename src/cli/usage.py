"""`oas usage`: spend per client, day and model (or per Claude Code session), from the
ledger the servers write."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

from src.core.settings import get_settings
from src.services.spend.ledger import UsageRow, open_ledger


async def _rows(
    url: str | None, data_dir: Path, since: str, client: str | None, by_session: bool
) -> list[UsageRow]:
    ledger = open_ledger(url, data_dir)
    try:
        return await ledger.usage(since, client, by_session)
    finally:
        await ledger.aclose()


def run(args: argparse.Namespace) -> int:
    settings = get_settings()
    now = datetime.now(UTC)
    since = (
        (now - timedelta(days=args.days - 1)).strftime("%Y-%m-%d")
        if args.days
        else now.strftime("%Y-%m-01")
    )
    by_session = getattr(args, "sessions", False)
    rows = asyncio.run(
        _rows(settings.ledger_url, settings.data_dir, since, args.client, by_session)
    )
    if args.json:
        out = [asdict(r) for r in rows]
        if by_session:  # name the fields for what they hold, as the table's header does
            out = [{**r, "first_day": r.pop("day"), "session": r.pop("model")} for r in out]
        json.dump({"since": since, "rows": out}, sys.stdout, indent=2)
        print()
        return 0
    if not rows:
        print(f"no spend recorded since {since}")
        return 0
    header = (
        "client",
        "first day" if by_session else "day",
        "session" if by_session else "model",
        "requests",
        "input",
        "output",
        "cost USD",
    )
    table = [
        (
            r.client,
            r.day,
            r.model or "-",
            str(r.requests),
            str(r.input_tokens),
            str(r.output_tokens),
            f"{r.cost:.4f}",
        )
        for r in rows
    ]
    widths = [max(len(h), *(len(row[i]) for row in table)) for i, h in enumerate(header)]
    print(f"spend since {since} (UTC)\n")
    print("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    client = None
    for row, usage in zip(table, rows, strict=True):
        if client is not None and usage.client != client:
            print()
        client = usage.client
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))
    print()
    totals: dict[str, float] = {}
    for usage in rows:
        totals[usage.client] = totals.get(usage.client, 0.0) + usage.cost
    for name, total in totals.items():
        print(f"total {name}: ${total:.4f}")
    return 0
