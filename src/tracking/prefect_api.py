"""The recorder's calls to the Prefect REST API, retried the way Prefect's own client does.

A Prefect server that is busy is not down: on SQLite it answers 503 while its database is
locked, and it may close a kept-alive connection under load. Those writes are retried
with jittered exponential backoff (honouring `Retry-After`), so a burst costs latency in
the background, not flow runs. Only a server that cannot be connected to (or keeps
failing after the retries) is reported down, and that is what turns tracking off until it
answers again.
"""

from __future__ import annotations

import asyncio
import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson
import structlog

log = structlog.get_logger("oas.recorder")

RETRY_STATUSES = frozenset({429, 502, 503, 504})


class AdaptiveSlots:
    """At most `limit` writes at once; the limit drops to one when Prefect says it is busy
    and climbs back one by one after a run of good answers.

    Why: Prefect on SQLite fails concurrent writes (SQLITE_BUSY, a 503) instead of queueing
    them, so there a single writer records more runs per second than four; on PostgreSQL
    the limit stays at its maximum.
    """

    def __init__(self, maximum: int, recover_after: int = 50) -> None:
        self.maximum = max(1, maximum)
        self.limit = self.maximum
        self.active = 0
        self.recover_after = recover_after
        self._streak = 0
        self._waiters: deque[asyncio.Future[None]] = deque()

    async def __aenter__(self) -> None:
        while self.active >= self.limit:
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            finally:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
        self.active += 1

    async def __aexit__(self, *exc: object) -> None:
        self.active -= 1
        self._wake()

    def _wake(self) -> None:
        free = self.limit - self.active
        while free > 0 and self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                free -= 1

    def busy(self) -> None:
        self.limit, self._streak = 1, 0

    def good(self) -> None:
        self._streak += 1
        if self._streak >= self.recover_after and self.limit < self.maximum:
            self.limit, self._streak = self.limit + 1, 0
            self._wake()


class PrefectDown(Exception):
    """The Prefect API did not take a write (unreachable, or failing after retries)."""


class PrefectRefused(Exception):
    """The Prefect API answered a write with a 4xx: the write itself is wrong."""

    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"Prefect API answered {status}: {body[:300]}")
        self.status = status


@dataclass(frozen=True, slots=True)
class ApiResponse:
    """What the recorder reads of an answer: its status, headers and JSON body."""

    status_code: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


class PrefectApi:
    """One aiohttp session to the Prefect API, on the recorder's thread and event loop.

    aiohttp, not httpx: on this project's 2-core machine httpx's request path was half
    of the recorder's CPU, and that CPU is taken from the requests being served.
    """

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float,
        concurrency: int,
        on_down: Callable[[BaseException], None],
        on_call: Callable[[bool, int], None],
        on_retry: Callable[[], None],
        retries: int = 6,
        max_backoff: float = 2.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = aiohttp.ClientTimeout(total=timeout, sock_connect=min(timeout, 2.0))
        self.concurrency = concurrency
        self._session: aiohttp.ClientSession | None = None
        self.slots = AdaptiveSlots(concurrency)
        self.retries = retries
        self.max_backoff = max_backoff
        self.on_down = on_down  # tell the recorder the API is unreachable
        self.on_call = on_call  # count a call: on_call(failed, bytes sent)
        self.sent_bytes = 0
        self.on_retry = on_retry  # count a retry

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:  # made on the recorder's running loop
            connector = aiohttp.TCPConnector(limit=self.concurrency + 2)
            self._session = aiohttp.ClientSession(
                timeout=self.timeout,
                connector=connector,
                # no gzip on loopback: Prefect compressing its answers and the recorder
                # inflating them cost CPU on both sides of the same machine for nothing
                headers={"content-type": "application/json", "accept-encoding": "identity"},
            )
        return self._session

    async def _request(
        self, method: str, url: str, json: Any = None, timeout: float | None = None
    ) -> ApiResponse:
        if callable(json):  # a body made when it is sent: with what is known by then
            json = json()
        data = orjson.dumps(json) if json is not None else None
        self.sent_bytes += len(data) if data else 0
        timeouts = aiohttp.ClientTimeout(total=timeout) if timeout else self.session.timeout
        async with self.session.request(
            method, f"{self.base_url}{url}", data=data, timeout=timeouts
        ) as response:
            return ApiResponse(response.status, dict(response.headers), await response.read())

    async def healthy(self) -> bool:
        """Does the API answer `/health` (within 2 s)?"""
        try:
            return (await self._request("GET", "/health", timeout=2.0)).status_code == 200
        except (TimeoutError, aiohttp.ClientError, OSError):
            return False

    def _delay(self, attempt: int, response: ApiResponse | None) -> float:
        if response is not None:
            try:
                return min(self.max_backoff, float(response.headers.get("retry-after", "")))
            except ValueError:
                pass
        return min(self.max_backoff, 0.1 * 2**attempt) * random.uniform(0.5, 1.5)

    async def call(self, method: str, url: str, json: Any = None) -> ApiResponse:
        """One write, retried while Prefect is busy; raises PrefectDown when it gives up,
        PrefectRefused when Prefect says the write is wrong. `json` may be a function that
        makes the body, called each time the write goes out."""
        for attempt in range(self.retries + 1):
            last = attempt == self.retries
            response: ApiResponse | None = None
            before = self.sent_bytes
            try:
                async with self.slots:
                    response = await self._request(method, url, json)
            except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as exc:
                self.on_call(True, self.sent_bytes - before)
                self.on_down(exc)  # nothing listens: no point in retrying now
                raise PrefectDown(str(exc) or type(exc).__name__) from exc
            except (TimeoutError, aiohttp.ClientError, OSError) as exc:
                # a dropped connection, a slow answer
                self.on_call(True, self.sent_bytes - before)
                if last:
                    self.on_down(exc)
                    raise PrefectDown(str(exc) or type(exc).__name__) from exc
            else:
                self.on_call(response.status_code >= 400, self.sent_bytes - before)
                busy = response.status_code in RETRY_STATUSES
                if busy:
                    self.slots.busy()
                else:
                    self.slots.good()
                if busy and not last:
                    pass  # retry below
                elif response.status_code >= 500:
                    log.warning(
                        "Prefect API failed a write",
                        url=url,
                        status=response.status_code,
                        body=response.text[:300],
                    )
                    raise PrefectDown(f"Prefect API answered {response.status_code}")
                elif response.status_code >= 400:
                    log.warning(
                        "Prefect API refused a write",
                        url=url,
                        status=response.status_code,
                        body=response.text[:300],
                    )
                    raise PrefectRefused(response.status_code, response.text)
                else:
                    return response
            self.on_retry()
            await asyncio.sleep(self._delay(attempt, response))
        raise AssertionError("unreachable")  # the loop returns or raises

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
