"""Concurrency limits: a bounded queue in front of the upstream, and a clear 529 when full."""

from __future__ import annotations

import asyncio
import threading
import time

import httpx
import pytest

from src.core.errors import AnthropicError
from src.services.upstream.limits import ConcurrencyLimiter
from tests.support.upstream import Reply

USER = [{"role": "user", "content": "hi"}]


async def test_waiters_get_slots_in_turn():
    limiter = ConcurrencyLimiter(limit=1, max_queue=5, queue_timeout=5)
    release = await limiter.acquire()
    order: list[int] = []

    async def waiter(n: int) -> None:
        give_back = await limiter.acquire()
        order.append(n)
        give_back()

    tasks = [asyncio.create_task(waiter(n)) for n in range(3)]
    await asyncio.sleep(0.01)
    assert limiter.stats.waiting == 3 and order == []
    release()
    release()  # giving back twice is harmless
    await asyncio.gather(*tasks)
    assert order == [0, 1, 2]
    assert limiter.stats.active == 0 and limiter.stats.waiting == 0


async def test_full_queue_is_refused_at_once_with_529():
    limiter = ConcurrencyLimiter(limit=1, max_queue=1, queue_timeout=5)
    release = await limiter.acquire()
    queued = asyncio.create_task(limiter.acquire())
    await asyncio.sleep(0.01)
    with pytest.raises(AnthropicError) as caught:
        await limiter.acquire()
    assert caught.value.status == 529 and caught.value.error_type == "overloaded_error"
    assert caught.value.retry_after and not caught.value.retryable
    assert limiter.stats.rejected == 1
    release()
    (await queued)()


async def test_waiting_longer_than_the_bound_is_a_529():
    limiter = ConcurrencyLimiter(limit=1, max_queue=5, queue_timeout=0.05)
    release = await limiter.acquire()
    with pytest.raises(AnthropicError, match="within 0.05s"):
        await limiter.acquire()
    assert limiter.stats.timed_out == 1 and limiter.stats.waiting == 0
    release()
    (await limiter.acquire())()  # the timed-out waiter took no slot with it


async def test_zero_means_no_limit():
    limiter = ConcurrencyLimiter(limit=0, max_queue=0, queue_timeout=0)
    releases = [await limiter.acquire() for _ in range(1000)]
    assert limiter.stats.active == 1000
    for release in releases:
        release()


def test_a_full_server_answers_529_and_recovers(make_oas, upstream):
    oas = make_oas(max_concurrency=2, max_queue=1, queue_timeout=10)
    upstream.default = lambda body: Reply(text="slow " * 20, chunk_size=5, delay=0.1)  # ~2 s
    statuses: list[int] = []

    def stream() -> None:
        with httpx.stream(
            "POST",
            f"{oas.url}/v1/messages",
            timeout=30,
            json={"model": "big", "max_tokens": 5, "messages": USER, "stream": True},
        ) as response:
            response.read()
            statuses.append(response.status_code)

    threads = [threading.Thread(target=stream) for _ in range(3)]  # 2 running, 1 queued
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 5
    while len(upstream.requests) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.2)
    refused = httpx.post(
        f"{oas.url}/v1/messages",
        timeout=10,
        json={"model": "big", "max_tokens": 5, "messages": USER},
    )
    assert refused.status_code == 529
    body = refused.json()
    assert body["error"]["type"] == "overloaded_error"
    assert "concurrent requests" in body["error"]["message"]
    assert refused.headers["retry-after"] == "1"
    for thread in threads:
        thread.join(30)
    assert statuses == [200, 200, 200]  # the queued one was served once a slot came free
    upstream.default = upstream._echo
    assert (
        httpx.post(
            f"{oas.url}/v1/messages",
            timeout=10,
            json={"model": "big", "max_tokens": 5, "messages": USER},
        ).status_code
        == 200
    )
