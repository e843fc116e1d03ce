"""`make bench` (or `python -m bench`): what `oas` costs, beside its floor, in one run.

    python -m bench                    # the full run, ~10 minutes on 2 cores
    python -m bench --quick            # a smoke run: small counts, SQLite Prefect only
    python -m bench --chunks 100 --chunk-size 8 --delay 0.002 --samples 200
    python -m bench --only prefect-cost --quick   # Prefect writes per request, printed only

Starts the bench upstream, `oas serve` untracked, with `OAS_UPSTREAM=litellm`, tracked by
a local Prefect server on SQLite and then on PostgreSQL, and `oas serve` with its own
Prefect server; writes `bench/results/report.md`, `results.json` and `latency.png`.
Everything runs on loopback; every loop is bounded in count and time.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from bench import report
from bench.processes import Oas, Prefect
from bench.suite import Config, Suite

RESULTS = Path(__file__).resolve().parent / "results"


def parse(argv: list[str] | None = None) -> tuple[Config, Path, str | None]:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--chunks", type=int, default=200, help="content chunks per stream")
    parser.add_argument("--chunk-size", type=int, default=16, help="characters per chunk")
    parser.add_argument("--delay", type=float, default=0.001, help="seconds between chunks")
    parser.add_argument("--samples", type=int, default=100, help="sequential samples per figure")
    parser.add_argument("--quick", action="store_true", help="small counts, SQLite only")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where the report goes")
    parser.add_argument(
        "--only",
        choices=["prefect-cost"],
        help="run one part and print its figures (no report is written)",
    )
    args = parser.parse_args(argv)
    samples = min(args.samples, 10) if args.quick else args.samples
    config = Config(args.chunks, args.chunk_size, args.delay, samples, args.quick)
    return config, args.out, args.only


def run(suite: Suite) -> None:
    quick = suite.config.quick
    suite.routing()
    suite.floor()
    suite.relay_floor()
    upstream = suite.upstream.base_url  # type: ignore[union-attr]

    print("oas, untracked (its own HTTP client upstream)", flush=True)
    oas = Oas(upstream, None)
    suite.cold_start("oas, untracked", oas.ready_seconds)
    try:
        suite.oas_sequential(oas, "untracked")
        suite.concurrency(oas, "untracked")
        suite.max_throughput(oas, "untracked")
    finally:
        oas.stop()

    print("oas, untracked, OAS_UPSTREAM=litellm", flush=True)
    oas = Oas(upstream, None, backend="litellm")
    try:
        suite.oas_sequential(oas, "litellm")
    finally:
        oas.stop()

    for database in ("sqlite",) if quick else ("sqlite", "postgres"):
        name = f"tracked-{database}"
        label = "SQLite" if database == "sqlite" else "PostgreSQL"
        print(f"oas, tracked by a local Prefect server on {label}", flush=True)
        prefect = Prefect(database)
        suite.cold_start(f"Prefect server ({label})", prefect.ready_seconds)
        try:
            ready = f"oas, external Prefect ({label})"
            if database == "postgres" and not quick:  # a target that must hold 3 times of 3
                suite.ready_again(ready, lambda url=prefect.api_url: Oas(upstream, url), 3)
            oas = Oas(upstream, prefect.api_url)
            suite.cold_start(ready, oas.ready_seconds)
            try:
                suite.oas_sequential(oas, name)
                suite.outside(oas, name)
                rate = 15 if database == "sqlite" else 45
                seconds = 8 if quick else 20
                suite.sustained(oas, name, rate, seconds)
                if database == "postgres":
                    suite.concurrency(oas, name, paced_c20_runs=3)
                    suite.sustained(oas, name, 120, 10)  # past what Prefect takes
                    suite.memory(oas, name)
                suite.prefect_cost(oas, prefect, name)
            finally:
                oas.stop()
        finally:
            prefect.stop()

    if not quick:
        print("oas serve starting its own Prefect server (PostgreSQL)", flush=True)
        oas = Oas(upstream, "own", timeout=240)
        suite.cold_start("oas with its own Prefect (fresh data directory)", oas.ready_seconds)
        oas.stop()


def prefect_cost_only(suite: Suite) -> None:
    """What each request writes to Prefect, on SQLite (and PostgreSQL unless --quick)."""
    for database in ("sqlite",) if suite.config.quick else ("sqlite", "postgres"):
        prefect = Prefect(database)
        try:
            if suite.upstream is None:
                suite.floor_upstream()
            oas = Oas(suite.upstream.base_url, prefect.api_url)  # type: ignore[union-attr]
            try:
                suite.prefect_cost(oas, prefect, f"tracked-{database}")
            finally:
                oas.stop()
        finally:
            prefect.stop()


def main(argv: list[str] | None = None) -> int:
    config, out, only = parse(argv)
    suite = Suite(config)
    if only == "prefect-cost":
        try:
            prefect_cost_only(suite)
        finally:
            suite.stop()
        print(json.dumps(suite.results["prefect"], indent=2))
        return 0
    try:
        run(suite)
    finally:
        suite.stop()
    path = report.write(suite.results, out)
    print(f"\nreport: {path}")
    missed = [t["target"] for t in suite.results["targets"] if t["verdict"] == "missed"]
    for target in suite.results["targets"]:
        print(
            f"  {target['verdict']:>12}  {target['target']}: {target['value']} {target['unit']}"
            f" ({target['limit']})"
        )
    errors = sum(p["errors"] for p in suite.results["phases"].values())
    print(f"{len(missed)} targets missed, {errors} failed requests")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
