"""What the recorder counts: runs tracked, untracked and late, API calls, payload bytes,
how long runs wait to be written, and whether Prefect is up (its changes logged here).
`/health/detailed`, `/metrics`, the log and the benchmark read these."""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import structlog

log = structlog.get_logger("oas.recorder")


@dataclass
class RecorderStats:
    """Counters for `/health/detailed`, the log and the benchmark."""

    tracked: int = 0
    untracked: int = 0
    late: int = 0
    max_lag_seconds: float = 0.0
    api_calls: int = 0
    api_errors: int = 0
    api_retries: int = 0
    api_bytes: int = 0  # request bodies sent to the Prefect API
    events: int = 0  # task-run events sent
    log_lines: int = 0  # run log lines sent
    session_writes: int = 0  # versions of session artifacts written
    payload_bytes: int = 0
    payload_new_bytes: int = 0
    prefect_up: bool = True
    down_since: float | None = None
    pending: int = 0
    writing: int = 0  # writes handed over and not yet done (creates, finishes, events)
    recent_lags: deque[float] = field(default_factory=lambda: deque(maxlen=1000))
    # seconds from a run's end to its last write done, for the last 1,000 runs
    record_lags: deque[float] = field(default_factory=lambda: deque(maxlen=1000))

    def count_call(self, failed: bool, sent_bytes: int = 0) -> None:
        self.api_calls += 1
        self.api_bytes += sent_bytes
        if failed:
            self.api_errors += 1

    def count_retry(self) -> None:
        self.api_retries += 1

    def count_events(self, n: int) -> None:
        self.events += n

    def count_log_lines(self, n: int) -> None:
        self.log_lines += n

    def went_down(self, error: str) -> bool:
        """Prefect is unreachable; True when it was up until now (the recorder then
        probes until it is back, and serves untracked meanwhile)."""
        if not self.prefect_up:
            return False
        self.prefect_up, self.down_since = False, time.time()
        log.warning("Prefect API unreachable: serving untracked until it is back", error=error)
        return True

    def came_back(self) -> None:
        down_for = time.time() - (self.down_since or time.time())
        self.prefect_up, self.down_since = True, None
        log.info("Prefect API is back: tracking resumed", down_seconds=round(down_for, 1))

    def note_lag(self, lag: float) -> None:
        """A run recorded late, `lag` seconds after it ended."""
        self.late += 1
        self.max_lag_seconds = max(self.max_lag_seconds, lag)
        self.recent_lags.append(lag)

    def _lag(self, q: float) -> float:
        lags = sorted(self.record_lags)
        return round(lags[min(len(lags) - 1, int(q * len(lags)))], 3) if lags else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "tracked": self.tracked,
            "untracked": self.untracked,
            "late": self.late,
            "max_lag_seconds": round(self.max_lag_seconds, 3),
            "api_calls": self.api_calls,
            "api_errors": self.api_errors,
            "api_retries": self.api_retries,
            "api_bytes": self.api_bytes,
            "events": self.events,
            "log_lines": self.log_lines,
            "session_writes": self.session_writes,
            "payload_bytes": self.payload_bytes,
            "payload_new_bytes": self.payload_new_bytes,
            "prefect_up": self.prefect_up,
            "pending": self.pending,
            "writing": self.writing,
            "record_lag_p50_seconds": self._lag(0.50),
            "record_lag_p99_seconds": self._lag(0.99),
        }
