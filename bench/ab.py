"""Two checkouts of `oas` side by side: the way to tell a change's effect on a busy machine.

Runs before and after minutes apart differ by more than most changes do (other processes
come and go). Here both are served at once, against the same bench upstream, and each
round sends one stream direct, one to the baseline and one to this checkout, so whatever
slows the machine slows all three alike; CPU is each process's own, over the whole run.

    git archive main | tar -x -C /tmp/oas-main
    python -m bench.ab /tmp/oas-main -n 40            # back to back and paced, untracked
    python -m bench.ab /tmp/oas-main -n 30 --tracked  # both tracked by one SQLite Prefect
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from bench.bodies import openai_request, small_request
from bench.client import Target, encode
from bench.outside import _FIRST_DELTA, _ms, watch
from bench.processes import Oas, Prefect, Upstream


async def rounds(
    direct: Target, servers: dict[str, Oas], delay_ms: int, count: int, tracked: bool
) -> None:
    model = f"bench/c100d{delay_ms}s"
    anthropic = encode(small_request(model, True))
    openai = encode(openai_request(small_request(model, True)))
    targets = {"direct": direct, **{k: Target.oas(o.base_url) for k, o in servers.items()}}

    async def once(name: str):  # -> StreamView
        body, marker = (openai, "direct") if name == "direct" else (anthropic, "oas")
        return await watch(targets[name], body, _FIRST_DELTA[marker])

    for _ in range(3):  # warm-up
        for name in targets:
            await once(name)
    if tracked:
        for server in servers.values():
            await asyncio.to_thread(server.drain)
    cpu = {k: o.cpu() for k, o in servers.items()}
    first: dict[str, list[float]] = {k: [] for k in targets}
    total: dict[str, list[float]] = {k: [] for k in targets}
    for _ in range(count):
        for name in targets:
            view = await once(name)
            if view.ok:
                first[name].append(view.first_delta)
                total[name].append(view.total)
    if tracked:
        for server in servers.values():
            await asyncio.to_thread(server.drain)
    floor_first, floor_total = _ms(first["direct"], 50)["p50"], _ms(total["direct"], 50)["p50"]
    for name, server in servers.items():
        used = server.cpu() - cpu[name]
        print(
            f"  {delay_ms} ms apart, {name:<9} first delta "
            f"+{_ms(first[name], 50)['p50'] - floor_first:.2f} ms p50, whole stream "
            f"+{_ms(total[name], 50)['p50'] - floor_total:.2f} ms p50, CPU "
            f"{used / (count * 100) * 1e6:.0f} us/chunk all-in (n={len(first[name])})",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("baseline", type=Path, help="another checkout's root (has src/)")
    parser.add_argument("-n", type=int, default=40, help="rounds per upstream shape")
    parser.add_argument("--tracked", action="store_true", help="both tracked (SQLite)")
    args = parser.parse_args()
    upstream = Upstream(100, 16, 0.001)
    prefect = Prefect("sqlite") if args.tracked else None
    servers: dict[str, Oas] = {}
    try:
        api = prefect.api_url if prefect else None
        servers["baseline"] = Oas(
            upstream.base_url, api, extra_env={"PYTHONPATH": str(args.baseline.resolve())}
        )
        servers["this"] = Oas(upstream.base_url, api)
        for delay_ms in (0, 1):
            asyncio.run(
                rounds(Target.upstream(upstream.base_url), servers, delay_ms, args.n, args.tracked)
            )
    finally:
        for server in servers.values():
            server.stop()
        if prefect is not None:
            prefect.stop()
        upstream.stop()


if __name__ == "__main__":
    main()
