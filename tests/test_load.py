"""Load on loopback, bounded in count and time: 100 concurrent streams, each checked word
for word; memory stays flat over repeated rounds; and a Prefect server killed half-way
through costs not one request."""

from __future__ import annotations

import asyncio
import gc
import os
import signal
import time

import anthropic
import pytest

from src.tracking.run import Run
from tests.support.ports import free_port
from tests.support.upstream import Reply

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

CONCURRENT = 100
ROUND_TIMEOUT = 120  # seconds for one round of 100 streams, far above what it takes


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def live_runs() -> int:
    gc.collect()
    return sum(1 for o in gc.get_objects() if isinstance(o, Run))


def prompt(n: int) -> str:
    return f"request {n:03d}: " + " ".join(f"w{n}-{i}" for i in range(12))


def slow_echo(delay: float):
    """The scripted upstream echoes each prompt back in 4-character chunks."""

    def script(body: dict) -> Reply:
        return Reply(text=f"echo: {body['messages'][-1]['content']}", chunk_size=4, delay=delay)

    return script


async def one_stream(client: anthropic.AsyncAnthropic, n: int, started: list[int]) -> str:
    async with client.messages.stream(
        model="big", max_tokens=200, messages=[{"role": "user", "content": prompt(n)}]
    ) as stream:
        async for event in stream:
            if event.type == "content_block_delta":
                started.append(n)
                break
        message = await stream.get_final_message()
    assert message.stop_reason == "end_turn"
    return message.content[0].text


async def a_round(oas, on_half_started=None) -> list[str]:
    started: list[int] = []
    client = oas.async_client(timeout=60)
    try:
        tasks = [asyncio.create_task(one_stream(client, n, started)) for n in range(CONCURRENT)]
        if on_half_started is not None:
            while len(set(started)) < CONCURRENT // 2:
                await asyncio.sleep(0.01)
            await asyncio.to_thread(on_half_started)
        return await asyncio.wait_for(asyncio.gather(*tasks), ROUND_TIMEOUT)
    finally:
        await client.close()


def assert_all_correct(texts: list[str]) -> None:
    assert len(texts) == CONCURRENT
    for n, text in enumerate(texts):
        assert text == f"echo: {prompt(n)}", (n, text)


async def test_100_concurrent_streams_all_complete_and_memory_stays_flat(make_oas, upstream):
    oas = make_oas()
    upstream.default = slow_echo(0.005)
    oas.runtime.services.tokenizers.join(120)  # LiteLLM's import is not per-request memory
    assert_all_correct(await a_round(oas))  # warm-up: imports, pools, caches
    oas.runtime.recorder.flush()
    gc.collect()
    baseline = rss_mb()
    runs_before = live_runs()
    started = time.monotonic()
    for _ in range(3):
        assert_all_correct(await a_round(oas))
    elapsed = time.monotonic() - started
    gc.collect()
    grown = rss_mb() - baseline
    print(
        f"\n300 streams in {elapsed:.1f}s; RSS {baseline:.0f} MB -> +{grown:.1f} MB; "
        f"live runs {runs_before}"
    )
    assert grown < 40, f"RSS grew by {grown:.1f} MB over 300 more streams"
    assert len(upstream.requests) == 4 * CONCURRENT
    assert upstream.disconnects == 0
    limiter = oas.runtime.services.upstream.limiter
    assert limiter.stats.active == 0 and limiter.stats.waiting == 0
    oas.runtime.recorder.flush()
    assert live_runs() <= runs_before, "finished runs are held"


async def test_prefect_killed_half_way_costs_no_request(make_oas, upstream, tmp_path):
    from src.local_prefect.prefect_server import LocalPrefectServer

    server = LocalPrefectServer(
        tmp_path / "prefect", port=free_port(), database="sqlite", restart=False
    )  # it stays down: oas serves on untracked
    api_url = await asyncio.to_thread(server.start)
    try:
        oas = make_oas(tracking=True, prefect_api_url=api_url)
        upstream.default = slow_echo(0.05)  # ~2 s a stream: the kill lands mid-stream

        def kill_prefect() -> None:
            os.killpg(server.process.pid, signal.SIGKILL)
            server.process.wait(10)

        killed_at = time.monotonic()
        texts = await a_round(oas, on_half_started=kill_prefect)
        assert_all_correct(texts)
        assert time.monotonic() - killed_at < ROUND_TIMEOUT
        stats = oas.runtime.recorder.stats
        deadline = time.monotonic() + 20
        while stats.prefect_up and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        assert not stats.prefect_up  # the recorder noticed, and served on untracked
    finally:
        await asyncio.to_thread(server.stop)
