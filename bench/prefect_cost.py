"""What tracked requests leave in Prefect's database: rows per table and bytes on disk.

Read straight from the database the Prefect server writes (SQLite file, or PostgreSQL
through its unix socket), before and after a batch of requests, once the server's own
recorders have flushed.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

TABLES = (
    "flow_run",
    "flow_run_state",
    "task_run",
    "task_run_state",
    "artifact",
    "events",
    "event_resources",
    "log",
)


def snapshot(prefect: object) -> dict[str, int]:
    """Row counts of the tables a run touches, and the database's size in bytes."""
    server = prefect.server  # type: ignore[attr-defined]
    if server.postgres is None:
        return _sqlite(server.root / "prefect.db")
    return asyncio.run(_postgres(server.postgres.socket_dir, server.postgres.password))


def settled(prefect: object, timeout: float = 180.0) -> dict[str, int]:
    """A snapshot once the server has ingested what it was sent: its event persister and
    task-run recorder work through a backlog after a burst, long after the API answered."""
    deadline = time.monotonic() + timeout
    last = snapshot(prefect)
    while time.monotonic() < deadline:
        time.sleep(1.5)
        now = snapshot(prefect)
        if all(now[t] == last[t] for t in TABLES):
            return now
        last = now
    return last


def _sqlite(path: Path) -> dict[str, int]:
    out: dict[str, int] = {}
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30) as db:
        for table in TABLES:
            try:
                out[table] = db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            except sqlite3.OperationalError:
                out[table] = 0
    wal = path.with_name(path.name + "-wal")
    out["bytes"] = path.stat().st_size + (wal.stat().st_size if wal.exists() else 0)
    return out


async def _postgres(socket_dir: Path, password: str) -> dict[str, int]:
    import asyncpg

    from src.local_prefect.postgres import DATABASE

    db = await asyncpg.connect(
        host=str(socket_dir), user="postgres", password=password, database=DATABASE
    )
    try:
        out: dict[str, int] = {}
        for table in TABLES:
            try:
                out[table] = await db.fetchval(f"SELECT count(*) FROM {table}")
            except asyncpg.UndefinedTableError:
                out[table] = 0
        out["bytes"] = await db.fetchval("SELECT pg_database_size(current_database())")
        return out
    finally:
        await db.close()


def per_request(before: dict[str, int], after: dict[str, int], requests: int) -> dict[str, float]:
    """What each request added, on average."""
    return {key: round((after[key] - before.get(key, 0)) / max(1, requests), 2) for key in after}
