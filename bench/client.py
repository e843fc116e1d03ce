"""The load side: send requests, time the first byte and the last, check each answer.

One aiohttp session per phase with kept-alive connections, the same code for the
direct-to-upstream floor and for `oas`, so what the client itself costs cancels out of
every difference (aiohttp, because on 2 cores the client's CPU is taken from the servers
it measures, and it costs a third of what httpx does per read). A sample is good only if
the answer is complete: a stream that ended with its final event, a JSON body.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import aiohttp
import orjson


@dataclass
class Sample:
    """One request as the client saw it; times in seconds from its start."""

    ttfb: float
    total: float
    ok: bool
    status: int
    size: int
    lag: float = 0.0  # open-loop runs: how late the request started against its schedule
    error: str = ""


@dataclass(frozen=True)
class Target:
    """Where requests go and how to tell a complete answer."""

    name: str
    url: str
    stream_end: bytes  # the last event of a complete stream
    headers: dict[str, str]

    @classmethod
    def upstream(cls, base_url: str) -> Target:
        return cls(
            "direct",
            f"{base_url}/chat/completions",
            b"[DONE]",
            {"content-type": "application/json", "authorization": "Bearer bench"},
        )

    @classmethod
    def oas(cls, base_url: str, name: str = "oas") -> Target:
        return cls(
            name,
            f"{base_url}/v1/messages",
            b"message_stop",
            {
                "content-type": "application/json",
                "x-api-key": "bench",
                "anthropic-version": "2023-06-01",
            },
        )


def new_client(connections: int) -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(limit=connections, limit_per_host=connections)
    return aiohttp.ClientSession(
        connector=connector,
        auto_decompress=False,
        timeout=aiohttp.ClientTimeout(total=120, sock_connect=10),
    )


async def send(client: aiohttp.ClientSession, target: Target, body: bytes, stream: bool) -> Sample:
    """One request, read to its end; never raises."""
    started = time.perf_counter()
    first = 0.0
    size = 0
    tail = b""
    try:
        async with client.post(target.url, data=body, headers=target.headers) as response:
            async for data in response.content.iter_any():
                if not first:
                    first = time.perf_counter()
                size += len(data)
                tail = (tail + data)[-256:]
            end = time.perf_counter()
            status = response.status
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        now = time.perf_counter() - started
        return Sample(now, now, False, 0, size, error=f"{type(exc).__name__}: {exc}")
    ok = status == 200 and (target.stream_end in tail if stream else _complete_json(tail))
    return Sample(
        (first or end) - started,
        end - started,
        ok,
        status,
        size,
        error="" if ok else tail.decode(errors="replace")[-200:],
    )


def _complete_json(tail: bytes) -> bool:
    return tail.rstrip().endswith(b"}")


async def closed_loop(
    target: Target, body: bytes, stream: bool, count: int, concurrency: int
) -> tuple[list[Sample], float]:
    """`count` requests by `concurrency` workers back to back; (samples, wall seconds)."""
    samples: list[Sample] = []
    remaining = iter(range(count))
    async with new_client(concurrency) as client:

        async def worker() -> None:
            for _ in remaining:
                samples.append(await send(client, target, body, stream))

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return samples, time.perf_counter() - started


async def open_loop(
    target: Target, body: bytes, stream: bool, rate: float, seconds: float
) -> tuple[list[Sample], float]:
    """Requests started at a fixed `rate` for `seconds`, whatever the answers take."""
    count = max(1, int(rate * seconds))
    samples: list[Sample] = []
    async with new_client(min(1000, count)) as client:
        started = time.perf_counter()

        async def at(i: int) -> None:
            due = started + i / rate
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            sample = await send(client, target, body, stream)
            sample.lag = max(0.0, time.perf_counter() - sample.total - due)
            samples.append(sample)

        await asyncio.gather(*(at(i) for i in range(count)))
        return samples, time.perf_counter() - started


async def warm(target: Target, body: bytes, stream: bool, count: int = 20) -> None:
    """Fill connection pools and caches on both sides before anything is timed."""
    samples, _ = await closed_loop(target, body, stream, count, 2)
    bad = [s for s in samples if not s.ok]
    if bad:
        raise RuntimeError(f"{target.name}: warm-up failed: {bad[0].status} {bad[0].error}")


def encode(body: dict) -> bytes:
    return orjson.dumps(body)
