"""The spend ledger: one row per answered request, in SQLite or PostgreSQL.

`OAS_LEDGER_URL` picks it: unset, `sqlite:///OAS_DATA_DIR/spend.sqlite3` (WAL, so several
`oas` processes on one machine share it); `postgresql://user:pass@host/db` for replicas
on several machines. Both backends answer the same three questions: add these rows, how
much did this client spend this month, and the usage table since a day. Calls are async
and run on the ledger's own thread (src/services/spend/service.py), never on the request loop.
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

SCHEMA = [
    """CREATE TABLE IF NOT EXISTS oas_spend (
        at DOUBLE PRECISION NOT NULL,
        day TEXT NOT NULL,
        month TEXT NOT NULL,
        client TEXT NOT NULL,
        model TEXT NOT NULL,
        session TEXT NOT NULL,
        request_id TEXT NOT NULL,
        cost DOUBLE PRECISION NOT NULL,
        input_tokens BIGINT NOT NULL,
        output_tokens BIGINT NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS oas_spend_client_month ON oas_spend (client, month)",
    "CREATE INDEX IF NOT EXISTS oas_spend_day ON oas_spend (day)",
]
_COLUMNS = (
    "at",
    "day",
    "month",
    "client",
    "model",
    "session",
    "request_id",
    "cost",
    "input_tokens",
    "output_tokens",
)


@dataclass(frozen=True, slots=True)
class SpendEntry:
    """What one request cost. `client` is `anonymous` without named clients."""

    at: float
    day: str
    month: str
    client: str
    model: str
    session: str
    request_id: str
    cost: float
    input_tokens: int
    output_tokens: int

    def row(self) -> tuple[Any, ...]:
        return tuple(getattr(self, c) for c in _COLUMNS)


@dataclass(frozen=True, slots=True)
class UsageRow:
    """Spend of a client on a day with a model (or, by session: `model` is the session)."""

    client: str
    day: str
    model: str
    requests: int
    input_tokens: int
    output_tokens: int
    cost: float


class Ledger(Protocol):
    description: str

    async def add(self, entries: list[SpendEntry]) -> None: ...
    async def month_total(self, client: str, month: str) -> float: ...
    async def usage(
        self, since_day: str, client: str | None = None, by_session: bool = False
    ) -> list[UsageRow]: ...
    async def aclose(self) -> None: ...


_USAGE = (
    "SELECT client, day, model, COUNT(*), SUM(input_tokens), SUM(output_tokens), "
    "SUM(cost) FROM oas_spend WHERE day >= {0}{1} GROUP BY client, day, model "
    "ORDER BY client, day, model"
)
# The same table by Claude Code session: `day` is the session's first day, `model` its models.
_SESSIONS = (
    "SELECT client, MIN(day), session, COUNT(*), SUM(input_tokens), "
    "SUM(output_tokens), SUM(cost) FROM oas_spend WHERE day >= {0}{1} "
    "GROUP BY client, session ORDER BY client, MIN(day), session"
)


class SqliteLedger:
    """A SQLite file in WAL mode; private to the user (0600)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.description = f"sqlite:///{path}"
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
        os.close(fd)
        # One connection, used only by the ledger thread; a busy writer is waited for.
        self.db = sqlite3.connect(path, timeout=10.0, check_same_thread=False, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        for statement in SCHEMA:
            self.db.execute(statement)

    async def add(self, entries: list[SpendEntry]) -> None:
        placeholders = ", ".join("?" * len(_COLUMNS))
        with self.db:  # one transaction per batch
            self.db.execute("BEGIN IMMEDIATE")
            self.db.executemany(
                f"INSERT INTO oas_spend ({', '.join(_COLUMNS)}) VALUES ({placeholders})",
                [e.row() for e in entries],
            )

    async def month_total(self, client: str, month: str) -> float:
        row = self.db.execute(
            "SELECT COALESCE(SUM(cost), 0) FROM oas_spend WHERE client = ? AND month = ?",
            (client, month),
        ).fetchone()
        return float(row[0])

    async def usage(
        self, since_day: str, client: str | None = None, by_session: bool = False
    ) -> list[UsageRow]:
        query = (_SESSIONS if by_session else _USAGE).format(
            "?", " AND client = ?" if client else ""
        )
        args = (since_day, client) if client else (since_day,)
        return [
            UsageRow(r[0], r[1], r[2], int(r[3]), int(r[4]), int(r[5]), float(r[6]))
            for r in self.db.execute(query, args).fetchall()
        ]

    async def aclose(self) -> None:
        self.db.close()


class PostgresLedger:
    """A table in a PostgreSQL database (asyncpg, which Prefect's server already needs)."""

    def __init__(self, url: str) -> None:
        self.url = url
        parts = urlsplit(url)
        self.description = f"postgresql://{parts.hostname or 'localhost'}{parts.path}"
        self.pool: Any = None

    async def _pool(self) -> Any:
        if self.pool is None:
            import asyncpg

            self.pool = await asyncpg.create_pool(
                self.url.replace("postgresql+asyncpg://", "postgresql://"), min_size=1, max_size=2
            )
            async with self.pool.acquire() as conn:
                for statement in SCHEMA:
                    await conn.execute(statement)
        return self.pool

    async def add(self, entries: list[SpendEntry]) -> None:
        pool = await self._pool()
        placeholders = ", ".join(f"${i + 1}" for i in range(len(_COLUMNS)))
        async with pool.acquire() as conn:
            await conn.executemany(
                f"INSERT INTO oas_spend ({', '.join(_COLUMNS)}) VALUES ({placeholders})",
                [e.row() for e in entries],
            )

    async def month_total(self, client: str, month: str) -> float:
        pool = await self._pool()
        async with pool.acquire() as conn:
            value = await conn.fetchval(
                "SELECT COALESCE(SUM(cost), 0) FROM oas_spend WHERE client = $1 AND month = $2",
                client,
                month,
            )
        return float(value)

    async def usage(
        self, since_day: str, client: str | None = None, by_session: bool = False
    ) -> list[UsageRow]:
        pool = await self._pool()
        query = (_SESSIONS if by_session else _USAGE).format(
            "$1", " AND client = $2" if client else ""
        )
        args = (since_day, client) if client else (since_day,)
        async with pool.acquire() as conn:
            rows = await conn.fetch(query, *args)
        return [
            UsageRow(r[0], r[1], r[2], int(r[3]), int(r[4]), int(r[5]), float(r[6])) for r in rows
        ]

    async def aclose(self) -> None:
        if self.pool is not None:
            await self.pool.close()


def open_ledger(url: str | None, data_dir: Path) -> Ledger:
    """The ledger `url` names (default: SQLite under `data_dir`)."""
    if not url:
        return SqliteLedger(data_dir / "spend.sqlite3")
    scheme = url.split(":", 1)[0].lower()
    if scheme == "sqlite":
        return SqliteLedger(Path(url.split(":///", 1)[1]).expanduser())
    if scheme in ("postgresql", "postgres", "postgresql+asyncpg"):
        return PostgresLedger(url)
    raise ValueError("OAS_LEDGER_URL: use sqlite:///PATH or postgresql://USER:PASS@HOST/DB")
