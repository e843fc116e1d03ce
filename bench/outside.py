"""The outside view: what a client that knows nothing of `oas` sees, and how long `oas`
holds each chunk.

A new TCP connection per request (as a CLI started per prompt opens one), time to first
byte taken as the arrival of the first content delta (not of `message_start`, which `oas`
sends before any delta), direct and through `oas` interleaved request by request, so a
busy machine slows both alike. The bench upstream stamps each content chunk with its send
time (`bench/cNdMs`, see `bench/upstream.py`); the client notes when each stamp arrives,
and arrival minus stamp through `oas`, less the same taken direct, is the time `oas` held
a chunk (its relay latency), told apart from CPU contention, which slows both sides.

    python -m bench.outside                      # 40 streams each of 100 deltas, untracked
    python -m bench.outside --delay-ms 1 -n 20   # a paced upstream
"""

from __future__ import annotations

import argparse
import asyncio
import re
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from bench.bodies import openai_request, small_request
from bench.client import Target, encode
from bench.stats import percentile

_STAMP = re.compile(rb"@(\d{16})")
_FIRST_DELTA = {"direct": b'"content":"@', "oas": b"content_block_delta"}


@dataclass
class StreamView:
    """One stream as the client saw it: seconds from its start, and each chunk's hold."""

    first_delta: float = 0.0
    total: float = 0.0
    ok: bool = False
    holds: list[float] = field(default_factory=list)  # arrival minus stamp, seconds
    error: str = ""


async def watch(target: Target, body: bytes, first_marker: bytes) -> StreamView:
    """One request on a connection of its own, read to its end; never raises."""
    view = StreamView()
    started = time.perf_counter()
    tail = b""
    connector = aiohttp.TCPConnector(force_close=True)
    timeout = aiohttp.ClientTimeout(total=60)
    try:
        async with (
            aiohttp.ClientSession(
                connector=connector, auto_decompress=False, timeout=timeout
            ) as client,
            client.post(target.url, data=body, headers=target.headers) as response,
        ):
            async for data in response.content.iter_any():
                now = time.time()
                if not view.first_delta and first_marker in (tail[-64:] + data):
                    view.first_delta = time.perf_counter() - started
                view.holds.extend(now - int(m) / 1e6 for m in _STAMP.findall(data))
                tail = (tail + data)[-256:]
            status = response.status
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        view.error = f"{type(exc).__name__}: {exc}"
        return view
    view.total = time.perf_counter() - started
    view.ok = status == 200 and target.stream_end in tail and bool(view.first_delta)
    if not view.ok:
        view.error = f"{status} {tail[-200:].decode(errors='replace')}"
    return view


def _ms(values: list[float], *ps: int) -> dict[str, float]:
    return {f"p{p}": round(percentile(values, p) * 1000, 3) for p in ps}


async def _interleaved(
    direct: tuple[Target, bytes, bytes],
    other: tuple[Target, bytes, bytes],
    count: int,
    cpu: Any = None,
    settle: Any = None,
) -> tuple[dict[str, list[StreamView]], float]:
    """`count` streams each way (target, body, first-delta marker), one direct then one
    through `other`, after three of each to warm both paths (imports, caches, pools
    upstream of `other`); and `other`'s CPU seconds over the whole run (`cpu` gives them
    so far), with `settle` (waits until tracking has written every run) included."""
    for _ in range(3):
        await watch(*direct)
        await watch(*other)
    views: dict[str, list[StreamView]] = {"direct": [], "other": []}
    # over the whole run, not around each request through `other`: the recorder's writes
    # land later, often during a direct request, and they are part of what a stream costs
    before = cpu() if cpu else 0.0
    for _ in range(count):
        views["direct"].append(await watch(*direct))
        views["other"].append(await watch(*other))
    if cpu and settle is not None:
        await asyncio.to_thread(settle)
    return views, (cpu() - before) if cpu else 0.0


async def compare(
    direct: Target,
    oas: Target,
    chunks: int,
    delay_ms: int,
    count: int,
    cpu: Any = None,
    settle: Any = None,
) -> dict[str, Any]:
    """`count` streams each way, interleaved; percentiles in ms, and, with `cpu` (a
    function giving `oas`'s CPU seconds so far), its CPU per streamed chunk, all-in: with
    `settle` (waits until tracking has written every run), the recorder's work too."""
    model = f"bench/c{chunks}d{delay_ms}s"
    anthropic = encode(small_request(model, True))
    openai = encode(openai_request(small_request(model, True)))
    seen, oas_cpu = await _interleaved(
        (direct, openai, _FIRST_DELTA["direct"]),
        (oas, anthropic, _FIRST_DELTA["oas"]),
        count,
        cpu,
        settle,
    )
    views = {"direct": seen["direct"], "oas": seen["other"]}
    out: dict[str, Any] = {"chunks": chunks, "delay_ms": delay_ms, "n": count}
    for name, streams in views.items():
        good = [v for v in streams if v.ok]
        out[name] = {
            "errors": len(streams) - len(good),
            "first_error": next((v.error for v in streams if not v.ok), "")[:300],
            "first_delta_ms": _ms([v.first_delta for v in good], 50, 99),
            "total_ms": _ms([v.total for v in good], 50, 99),
            "hold_ms": _ms([h for v in good for h in v.holds], 50, 99),
        }
    d, o = out["direct"], out["oas"]
    out["overhead_ms"] = {
        metric: {p: round(o[metric][p] - d[metric][p], 3) for p in ("p50", "p99")}
        for metric in ("first_delta_ms", "total_ms", "hold_ms")
    }
    if cpu:
        out["oas_us_per_chunk"] = round(oas_cpu / (count * chunks) * 1e6, 1)
    return out


async def floor(
    direct: Target, relay: Target, chunks: int, delay_ms: int, count: int, cpu: Any
) -> float:
    """CPU per chunk of the bare relay (`bench/relay.py`, `cpu` its CPU seconds so far),
    streams direct and relayed interleaved as in `compare`."""
    body = encode(openai_request(small_request(f"bench/c{chunks}d{delay_ms}s", True)))
    marker = _FIRST_DELTA["direct"]
    views, used = await _interleaved((direct, body, marker), (relay, body, marker), count, cpu)
    failed = next((v for v in views["other"] if not v.ok), None)
    if failed is not None:
        raise RuntimeError(f"the bare relay failed: {failed.error}")
    return round(used / (count * chunks) * 1e6, 1)


def show(label: str, result: dict[str, Any]) -> None:
    over = result["overhead_ms"]
    print(
        f"  {label:<36} first delta +{over['first_delta_ms']['p50']:.2f} ms p50, "
        f"whole stream +{over['total_ms']['p50']:.2f} ms, relay hold "
        f"p50 {over['hold_ms']['p50']:.3f} / p99 {over['hold_ms']['p99']:.3f} ms"
        + (
            f", {result['oas_us_per_chunk']:.0f} us CPU/chunk"
            if "oas_us_per_chunk" in result
            else ""
        ),
        flush=True,
    )


def main() -> None:
    from bench.processes import Oas, Upstream

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=40, help="streams each way")
    parser.add_argument("--chunks", type=int, default=100)
    parser.add_argument("--delay-ms", type=int, default=0, help="0: back to back")
    args = parser.parse_args()
    upstream = Upstream(args.chunks, 16, 0.001)
    try:
        oas = Oas(upstream.base_url, None)
        try:
            result = asyncio.run(
                compare(
                    Target.upstream(upstream.base_url),
                    Target.oas(oas.base_url),
                    args.chunks,
                    args.delay_ms,
                    args.n,
                    oas.cpu,
                    oas.drain,
                )
            )
        finally:
            oas.stop()
    finally:
        upstream.stop()
    show(f"{args.chunks} deltas, {args.delay_ms} ms apart", result)
    for name in ("direct", "oas"):
        if result[name]["errors"]:
            print(f"  {name}: {result[name]['errors']} errors: {result[name]['first_error']}")


if __name__ == "__main__":
    main()
