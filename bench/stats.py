"""Percentiles of a phase's samples, and overheads as differences and ratios to the floor."""

from __future__ import annotations

import math
import statistics
from typing import Any

from bench.client import Sample

PERCENTILES = (50, 95, 99)


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (no interpolation: every figure is a real sample)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = math.ceil(p / 100 * len(ordered))  # 1-based
    return ordered[max(0, min(len(ordered), rank) - 1)]


def _ms(values: list[float]) -> dict[str, float]:
    out = {f"p{p}": round(percentile(values, p) * 1000, 3) for p in PERCENTILES}
    out["mean"] = round(statistics.fmean(values) * 1000, 3) if values else float("nan")
    return out


def summary(samples: list[Sample], wall: float | None = None) -> dict[str, Any]:
    """n, errors, and ttfb/total/start-lag percentiles in ms (of the good samples)."""
    good = [s for s in samples if s.ok]
    bad = [s for s in samples if not s.ok]
    out: dict[str, Any] = {
        "n": len(samples),
        "errors": len(bad),
        "first_error": f"{bad[0].status} {bad[0].error}"[:300] if bad else "",
        "ttfb_ms": _ms([s.ttfb for s in good]),
        "total_ms": _ms([s.total for s in good]),
        "lag_ms": _ms([s.lag for s in good]),
    }
    if wall:
        out["seconds"] = round(wall, 3)
        out["rps"] = round(len(good) / wall, 1)
    return out


def overhead(floor: dict[str, Any], measured: dict[str, Any]) -> dict[str, Any]:
    """Per percentile: measured minus floor (ms) and measured / floor, for ttfb and total."""
    out: dict[str, Any] = {}
    for metric in ("ttfb_ms", "total_ms"):
        out[metric] = {}
        for p in PERCENTILES:
            f, m = floor[metric][f"p{p}"], measured[metric][f"p{p}"]
            out[metric][f"p{p}"] = {
                "diff": round(m - f, 3),
                "ratio": round(m / f, 3) if f else None,
            }
    return out
