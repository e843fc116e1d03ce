"""One keyed artifact per Claude Code session, `session-<session id>`, with running totals.

Prefect keeps every version of a keyed artifact and its Artifacts page lists the latest of
each key, so a person sees each session with what it cost so far. The totals are kept in
the recorder's memory and written (at most one write per session per flush, however many
of its requests ended meanwhile); the first time a process writes a session, it reads the
latest version first, so totals carry over a restart of `oas`. The numbers travel in the
artifact's metadata, the table is for people.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
import structlog

from src.tracking.prefect_api import ApiResponse, PrefectDown
from src.tracking.recorder_stats import RecorderStats
from src.tracking.run import FAILED, Run

log = structlog.get_logger("oas.recorder")

MAX_SESSIONS = 10_000  # in memory; one dropped is read back from Prefect when it returns
_NOT_KEY = re.compile(r"[^a-z0-9-]+")
_COUNTS = (
    "requests",
    "errors",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
)


def artifact_key(session_id: str) -> str:
    """`session-<id>` in the letters Prefect allows in a key (lowercase, digits, dashes)."""
    return "session-" + (_NOT_KEY.sub("-", session_id.lower()).strip("-")[:200] or "unknown")


@dataclass
class SessionTotals:
    """What a session's requests added up to."""

    requests: int = 0
    errors: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    cost: float = 0.0
    models: dict[str, int] = field(default_factory=dict)
    first: float | None = None
    last: float | None = None

    def add_run(self, run: Run) -> None:
        usage = run.summary.get("usage") or {}
        self.requests += 1
        self.errors += run.state == FAILED
        self.input_tokens += _int(usage.get("input_tokens"))
        self.output_tokens += _int(usage.get("output_tokens"))
        self.cache_read_tokens += _int(usage.get("cache_read_input_tokens"))
        self.cache_write_tokens += _int(usage.get("cache_creation_input_tokens"))
        cost = run.summary.get("cost")
        self.cost += cost if isinstance(cost, (int, float)) else 0.0
        model = str(run.upstream_model or run.parameters.get("model") or "?")
        self.models[model] = self.models.get(model, 0) + 1
        self.first = min(self.first or run.started, run.started)
        self.last = max(self.last or run.started, run.started)

    def merge(self, other: SessionTotals) -> None:
        for name in _COUNTS:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.cost += other.cost
        for model, n in other.models.items():
            self.models[model] = self.models.get(model, 0) + n
        firsts = [t for t in (self.first, other.first) if t is not None]
        lasts = [t for t in (self.last, other.last) if t is not None]
        self.first, self.last = min(firsts, default=None), max(lasts, default=None)

    def metadata(self) -> dict[str, str]:
        """Prefect's artifact metadata: string values of at most 500 characters."""
        numbers = {name: getattr(self, name) for name in _COUNTS}
        numbers |= {"cost": round(self.cost, 8), "first": self.first, "last": self.last}
        models = orjson.dumps(dict(sorted(self.models.items(), key=lambda m: -m[1])[:8]))
        return {"totals": orjson.dumps(numbers).decode(), "models": models.decode()[:500]}

    @classmethod
    def from_metadata(cls, metadata: dict[str, Any] | None) -> SessionTotals:
        """Totals read back from an artifact this module wrote (anything else: zero)."""
        totals = cls()
        try:
            numbers = orjson.loads((metadata or {}).get("totals") or "{}")
            for name in _COUNTS:
                setattr(totals, name, _int(numbers.get(name)))
            totals.cost = float(numbers.get("cost") or 0.0)
            totals.first, totals.last = numbers.get("first"), numbers.get("last")
            models = orjson.loads((metadata or {}).get("models") or "{}")
            totals.models = {str(k): _int(v) for k, v in models.items()}
        except (orjson.JSONDecodeError, AttributeError, TypeError, ValueError):
            return cls()  # a version cut short or written by hand: start over
        return totals

    def markdown(self, session_id: str) -> str:
        models = (
            ", ".join(f"{m} ({n})" for m, n in sorted(self.models.items(), key=lambda m: -m[1]))
            or "-"
        )
        rows = [
            ("session", session_id.replace("|", "\\|")),
            ("requests", self.requests),
            ("errors", self.errors),
            ("input tokens", self.input_tokens),
            ("output tokens", self.output_tokens),
            ("cache read tokens", self.cache_read_tokens),
            ("cache write tokens", self.cache_write_tokens),
            ("cost (USD)", f"{self.cost:.6f}".rstrip("0").rstrip(".")),
            ("models", models.replace("|", "\\|")),
            ("first request", _when(self.first)),
            ("last request", _when(self.last)),
        ]
        return "\n".join(
            ["| field | value |", "| --- | --- |", *(f"| {k} | {v} |" for k, v in rows)]
        )

    def description(self) -> str:
        return (
            f"Claude Code session: {self.requests} requests, {self.errors} errors, "
            f"{self.cost:.4f} USD"
        )


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _when(ts: float | None) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds") if ts else "-"


Call = Callable[[str, str, Any], Awaitable[ApiResponse]]


class Sessions:
    """The recorder's running totals per session, and which of them need writing."""

    def __init__(self, max_sessions: int = MAX_SESSIONS) -> None:
        self.totals: dict[str, SessionTotals] = {}
        self.loaded: set[str] = set()  # sessions whose earlier totals were read from Prefect
        self.dirty: set[str] = set()
        self.writing = False  # one flush at a time: each reads, then writes, a session
        self.max_sessions = max_sessions

    def add(self, run: Run) -> None:
        """Count a finished `messages` run in its session's totals."""
        session = run.parameters.get("session_id")
        if run.flow_name != "messages" or not isinstance(session, str) or not session:
            return
        if session not in self.totals and len(self.totals) >= self.max_sessions:
            self._forget_one()
        self.totals.setdefault(session, SessionTotals()).add_run(run)
        self.dirty.add(session)

    def _forget_one(self) -> None:
        clean = [s for s in self.totals if s not in self.dirty]
        if clean:
            oldest = min(clean, key=lambda s: self.totals[s].last or 0.0)
            del self.totals[oldest]
            self.loaded.discard(oldest)

    async def flush(self, call: Call, stats: RecorderStats) -> None:
        """Write every session that changed since the last flush (counted in `stats`)."""
        if self.writing:
            return
        self.writing = True
        try:
            for session in list(self.dirty):
                self.dirty.discard(session)
                try:
                    await self._write(call, session)
                    stats.session_writes += 1
                except Exception as exc:
                    self.dirty.add(session)
                    if not isinstance(exc, PrefectDown):
                        log.warning(
                            "could not write a session's artifact", session=session, error=str(exc)
                        )
                    break
        finally:
            self.writing = False

    async def _write(self, call: Call, session: str) -> None:
        key = artifact_key(session)
        if session not in self.loaded:
            found = (
                await call(
                    "POST",
                    "/artifacts/latest/filter",
                    {"artifacts": {"key": {"any_": [key]}}, "limit": 1},
                )
            ).json()
            if found:  # written by an earlier process: carry its totals on
                self.totals[session].merge(SessionTotals.from_metadata(found[0].get("metadata_")))
            self.loaded.add(session)
        totals = self.totals[session]
        await call(
            "POST",
            "/artifacts/",
            {
                "key": key,
                "type": "markdown",
                "description": totals.description(),
                "data": totals.markdown(session),
                "metadata_": totals.metadata(),
            },
        )
