"""`oas prune`: delete stored request payloads past their retention."""

from __future__ import annotations

import argparse

from src.core.settings import get_settings
from src.tracking.payloads import PayloadStore


def prune(args: argparse.Namespace) -> int:
    settings = get_settings()
    days = args.days if args.days is not None else settings.payload_retention_days
    store = PayloadStore(settings.payload_store_dir)
    requests, blobs = store.prune(days * 86400)
    print(
        f"removed {requests} stored requests and {blobs} unreferenced blobs older than "
        f"{days:g} days from {store.root}"
    )
    return 0
