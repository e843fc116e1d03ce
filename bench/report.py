"""The benchmark's report: targets met or missed, tables, JSON, and a latency chart.

Written under `bench/results/`: `report.md` (what a person reads), `results.json`
(every figure and every sample, for comparing runs) and `latency.png`.
"""

from __future__ import annotations

import json
import os
import platform
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.stats import overhead
from bench.targets import figure, judge

# (oas phase, its floor) pairs whose overhead the report shows
COMPARED = [
    ("{p}/small/c1", "direct/small/c1"),
    ("{p}/small-stream/c1", "direct/small-stream/c1"),
    ("{p}/claude-code-stream/c1", "direct/claude-code-stream/c1"),
    ("{p}/small-stream/c20", "direct/small-stream/c20"),
    ("{p}/small-stream/c100", "direct/small-stream/c100"),
    ("{p}/paced-stream/c20", "direct/paced-stream/c20"),
    ("{p}/paced-stream/c100", "direct/paced-stream/c100"),
]
PATHS = ("untracked", "litellm", "tracked-sqlite", "tracked-postgres")


def _fmt(value: Any, digits: int = 2) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def markdown(results: dict[str, Any]) -> str:
    phases = results["phases"]
    c = results["config"]
    lines = [
        "# oas benchmark",
        "",
        f"{results['when']}, {results['machine']}. Upstream: {c['chunks']} chunks of "
        f"{c['chunk_size']} characters, {c['delay'] * 1000:g} ms apart; "
        f"{c['samples']} sequential samples per figure"
        + (" (quick run: small counts, not for comparison)" if c["quick"] else "")
        + ".",
        "",
        "## Targets",
        "",
        "| target | limit | measured | |",
        "| --- | --- | --- | --- |",
    ]
    for row in results["targets"]:
        lines.append(
            f"| {row['target']} | {row['limit']} | {_fmt(row['value'])} {row['unit']} "
            f"| **{row['verdict']}** |"
        )
    lines += [
        "",
        "## Overhead against the floor (direct to the upstream)",
        "",
        "Differences of percentiles in ms (oas minus direct), and the ratio of the p50s.",
        "",
        "| path | request | conc. | TTFB p50 | TTFB p95 | TTFB p99 | total p50 | total p95 "
        "| total p99 | total p50 ratio |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for path in PATHS:
        for pattern, floor_key in COMPARED:
            key = pattern.format(p=path)
            if key not in phases or floor_key not in phases:
                continue
            o = overhead(phases[floor_key], phases[key])
            _, shape, conc = key.split("/")
            lines.append(
                f"| {path} | {shape} | {conc[1:]} | "
                + " | ".join(_fmt(o["ttfb_ms"][p]["diff"]) for p in ("p50", "p95", "p99"))
                + " | "
                + " | ".join(_fmt(o["total_ms"][p]["diff"]) for p in ("p50", "p95", "p99"))
                + f" | {_fmt(o['total_ms']['p50']['ratio'], 3)} |"
            )
    lines += [
        "",
        "## Raw latencies (ms)",
        "",
        "| phase | n | errors | TTFB p50 | TTFB p99 | total p50 | total p99 | req/s |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for key, s in phases.items():
        lines.append(
            f"| {key} | {s['n']} | {s['errors']} | {_fmt(s['ttfb_ms']['p50'])} | "
            f"{_fmt(s['ttfb_ms']['p99'])} | {_fmt(s['total_ms']['p50'])} | "
            f"{_fmt(s['total_ms']['p99'])} | {_fmt(s.get('rps'), 1)} |"
        )
    lines += [
        "",
        "## CPU of the oas process",
        "",
        "From the process's own counters (user + system), tracking's background writes "
        "included. The marginal cost of a chunk is the slope between the long and the "
        "short stream.",
        "",
        "| path | request | CPU per request (us) | CPU per chunk, all-in (us) |",
        "| --- | --- | --- | --- |",
    ]
    for key, v in results["cpu"].items():
        path, shape = key.split("/")
        lines.append(
            f"| {path} | {shape} | {_fmt(v['us_per_request'], 0)} | {_fmt(v['us_per_chunk'])} |"
        )
    for path, slope in results.get("cpu_slope", {}).items():
        lines.append(f"| {path} | marginal per chunk | | {_fmt(slope)} |")
    lines += [
        "",
        "## Throughput and tracking",
        "",
        "Served: requests per second the clients got answers at. Recorded: flow runs "
        "written per second, from the first request until the last run was written. "
        "Lag: seconds from a request's end until its flow run was complete in Prefect.",
        "",
        "| run | requests | served req/s | errors | tracked | untracked | recorded runs/s "
        "| lag p50 (s) | lag p99 (s) | API calls | retried |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for key, v in results["throughput"].items():
        rps = v.get("achieved_rps", v.get("rps"))
        lines.append(
            f"| {key} | {v['requests']} | {_fmt(rps, 1)} | {v['errors']} | "
            f"{v.get('tracked', '-')} | {v.get('untracked', '-')} | "
            f"{_fmt(v.get('recorded_rps'), 1)} | {_fmt(v.get('record_lag_p50_seconds'))} | "
            f"{_fmt(v.get('record_lag_p99_seconds'))} | {v.get('api_calls', '-')} | "
            f"{v.get('api_retries', '-')} |"
        )
    lines += [
        "",
        "## The outside view (a new connection per request)",
        "",
        "`bench/outside.py`: the first `content_block_delta` as first byte, 100 deltas "
        "per stream, direct and through oas interleaved. Relay hold: arrival minus the "
        "upstream's send stamp per chunk, oas less direct (ms). A bare relay row: "
        "`bench/relay.py`, the same server and HTTP client with nothing of oas between, "
        "its CPU per chunk measured the same way (the floor of the stack).",
        "",
        "| run | n | first delta +p50 | first delta +p99 | total +p50 | total +p99 "
        "| hold +p50 | hold +p99 | oas CPU per chunk (us) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for key, v in results.get("outside", {}).items():
        if key.startswith("relay/"):  # the bare relay: a row of its own, below
            lines.append(f"| {key} (bare relay) | | | | | | | | {_fmt(v['us_per_chunk'], 1)} |")
            continue
        o = v["overhead_ms"]
        lines.append(
            f"| {key} | {v['n']} | {_fmt(o['first_delta_ms']['p50'])} | "
            f"{_fmt(o['first_delta_ms']['p99'])} | {_fmt(o['total_ms']['p50'])} | "
            f"{_fmt(o['total_ms']['p99'])} | {_fmt(o['hold_ms']['p50'], 3)} | "
            f"{_fmt(o['hold_ms']['p99'], 3)} | {_fmt(v.get('oas_us_per_chunk'), 1)} |"
        )
    lines += [
        "",
        "## Memory",
        "",
        "```json",
        json.dumps(results["memory"], indent=2),
        "```",
        "",
        "## Prefect cost per request",
        "",
        "API calls `oas` made, rows and bytes added to Prefect's database, bytes added "
        "to the payload store.",
        "",
        "```json",
        json.dumps(results["prefect"], indent=2),
        "```",
        "",
        "## Ready (seconds from start to `/health`)",
        "",
        "| start | seconds |",
        "| --- | --- |",
    ]
    for key, v in results["cold_start"].items():
        lines.append(f"| {key} | {_fmt(v)} |")
    return "\n".join(lines) + "\n"


def chart(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = [
        k
        for k in results["samples"]
        if k.endswith("/small-stream/c1") or k.endswith("/paced-stream/c20")
    ]
    if not keys:
        return
    fig, axes = plt.subplots(1, 2, figsize=(13, 0.45 * len(keys) + 2))
    for ax, index, title in (
        (axes[0], 0, "time to first byte (ms)"),
        (axes[1], 1, "total time (ms)"),
    ):
        data = [[s[index] * 1000 for s in results["samples"][k]] or [0.0] for k in keys]
        ax.boxplot(data, vert=False, showfliers=True, whis=(1, 99))
        ax.set_yticks(range(1, len(keys) + 1), keys if index == 0 else [""] * len(keys))
        ax.set_title(title)
        ax.set_xscale("log")
        ax.grid(axis="x", alpha=0.3)
    fig.suptitle("streamed requests, one at a time (c1) and 20 at once (c20): whiskers p1-p99")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def add_slopes(results: dict[str, Any], chunks: int) -> None:
    """CPU per chunk as the slope between the long and the short stream of each path."""
    short = max(1, chunks // 10)
    slopes = {}
    for path in PATHS:
        long_ = figure(results, "cpu", f"{path}/small-stream", "us_per_request")
        short_ = figure(results, "cpu", f"{path}/short-stream", "us_per_request")
        if long_ is not None and short_ is not None and chunks > short:
            slopes[path] = round((long_ - short_) / (chunks - short), 2)
    results["cpu_slope"] = slopes


def write(results: dict[str, Any], out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    results["when"] = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    results["machine"] = (
        f"{os.cpu_count()} cores, Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}"
    )
    add_slopes(results, results["config"]["chunks"])
    results["targets"] = judge(results)
    (out / "results.json").write_text(json.dumps(results, indent=1))
    (out / "report.md").write_text(markdown(results))
    chart(results, out / "latency.png")
    return out / "report.md"
