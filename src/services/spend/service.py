"""The ledger's own thread: spend rows written in batches, month totals read for budgets.

The request path only calls `record` (puts a row on a queue, returns at once) and awaits
`month_spent` for clients with a budget (the read runs on this thread; the request loop
waits on a future, never on the database). Rows not yet written are added to what the
database says, so a process's own spend is never missed for lack of a commit.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import defaultdict
from concurrent.futures import Future
from datetime import UTC, datetime
from typing import Any

import structlog

from src.core.event_loops import background_loop
from src.core.metrics import metrics
from src.services.spend.ledger import Ledger, SpendEntry, UsageRow
from src.services.spend.pricing import price_from_table

log = structlog.get_logger("oas.spend")

ANONYMOUS = "anonymous"
FLUSH_EVERY = 1.0  # seconds a row may wait for others to join its batch


def month_of(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m")


class SpendService:
    """Start with `start()`; `stop()` writes what is pending."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.loop = background_loop()
        self.thread = threading.Thread(target=self._run, daemon=True, name="oas-spend")
        self.queue: list[SpendEntry] = []
        self.pending: defaultdict[tuple[str, str], float] = defaultdict(float)
        self.lock = threading.Lock()
        self.stopping = False
        self.urgent = False  # a queued row counts against a budget: written at once
        self.wake: asyncio.Event | None = None
        self.failures = 0

    def start(self) -> SpendService:
        self.thread.start()
        return self

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self._writer())

    async def _writer(self) -> None:
        self.wake = wake = asyncio.Event()
        while True:
            with self.lock:
                waiting = bool(self.queue)
            if not waiting and not self.stopping:  # nothing to write: sleep till a row comes
                await wake.wait()
                wake.clear()
                continue
            if not self.stopping and not self.urgent:
                # Within a second, or at once for a row that counts against a budget
                # (replicas see it within milliseconds); rows arriving meanwhile join it.
                try:
                    await asyncio.wait_for(wake.wait(), FLUSH_EVERY)
                except TimeoutError:
                    pass
                wake.clear()
            await self._flush()
            if self.stopping:
                await self.ledger.aclose()
                return

    async def _flush(self) -> None:
        with self.lock:
            batch, self.queue, self.urgent = self.queue, [], False
        if not batch:
            return
        priced = [self._priced(e) for e in batch]
        try:
            await self.ledger.add(priced)
        except Exception as exc:
            self.failures += 1
            log.warning(
                "could not write spend to the ledger; will retry",
                ledger=self.ledger.description,
                error=f"{type(exc).__name__}: {exc}",
            )
            with self.lock:
                self.queue[:0] = priced
            await asyncio.sleep(1.0)
            return
        with self.lock:
            for entry in priced:
                key = (entry.client, entry.month)
                self.pending[key] -= entry.cost
                if self.pending[key] <= 1e-12:
                    del self.pending[key]

    def _priced(self, entry: SpendEntry) -> SpendEntry:
        if entry.cost >= 0:
            return entry
        # No cost reported: LiteLLM's price table (import already warm in a server).
        cost = price_from_table(entry.model, entry.input_tokens, entry.output_tokens) or 0.0
        metrics.record_spend(entry.client, entry.model, cost)
        with self.lock:
            self.pending[(entry.client, entry.month)] += cost
        return SpendEntry(**{**_fields(entry), "cost": cost})

    # ---- called from the request path ------------------------------------------------

    def record(
        self,
        *,
        client: str | None,
        model: str,
        session: str | None,
        request_id: str,
        cost: float | None,
        input_tokens: int,
        output_tokens: int,
        urgent: bool = False,
    ) -> None:
        """Queue one request's spend (`cost` None: priced from LiteLLM's table later).
        `urgent` (a client with a budget): written at once, so that other replicas see it
        within milliseconds; otherwise with the next batch, within a second."""
        now = time.time()
        entry = SpendEntry(
            now,
            datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%d"),
            month_of(now),
            client or ANONYMOUS,
            model,
            session or "",
            request_id,
            -1.0 if cost is None else float(cost),
            input_tokens,
            output_tokens,
        )
        with self.lock:
            first = not self.queue  # the writer sleeps until a row comes
            self.queue.append(entry)
            self.urgent = self.urgent or urgent
            if cost is not None:
                self.pending[(entry.client, entry.month)] += float(cost)
        if cost is not None:
            metrics.record_spend(entry.client, model, float(cost))
        if urgent or first:
            self._wake()

    def record_answer(
        self,
        summary: dict[str, Any],
        *,
        client: str | None,
        model: str,
        session: str | None,
        request_id: str,
        urgent: bool = False,
    ) -> None:
        """Queue what an answered request cost, from its run's summary (`usage`, and `cost`
        where the upstream reported one); a request without usage cost nothing."""
        usage = summary.get("usage")
        if not isinstance(usage, dict):
            return
        cost = summary.get("cost")
        self.record(
            client=client,
            urgent=urgent,
            model=model,
            session=session,
            request_id=request_id,
            cost=float(cost) if isinstance(cost, (int, float)) else None,
            input_tokens=int(usage.get("input_tokens") or 0),
            output_tokens=int(usage.get("output_tokens") or 0),
        )

    def _wake(self) -> None:
        if self.wake is not None and not self.loop.is_closed():
            try:
                self.loop.call_soon_threadsafe(self.wake.set)
            except RuntimeError:  # the loop just stopped
                pass

    async def month_spent(self, client: str) -> float:
        """This client's spend this calendar month (UTC), across every process."""
        month = month_of(time.time())
        stored = await self._call(self.ledger.month_total(client, month))
        with self.lock:
            return stored + self.pending.get((client, month), 0.0)

    async def usage(
        self, since_day: str, client: str | None = None, by_session: bool = False
    ) -> list[UsageRow]:
        return await self._call(self.ledger.usage(since_day, client, by_session))

    async def _call(self, coro: Any) -> Any:
        future: Future[Any] = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return await asyncio.wrap_future(future)

    def stop(self, timeout: float = 5.0) -> None:
        self.stopping = True
        self._wake()
        if self.thread.is_alive():
            self.thread.join(timeout)


def _fields(entry: SpendEntry) -> dict[str, Any]:
    return {name: getattr(entry, name) for name in entry.__slots__}
