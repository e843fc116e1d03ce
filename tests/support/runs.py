"""The runs an `oas` hands to its recorder, kept for a test to read (tags, summary).

For tests that check what a run says without a Prefect server; tests/test_routes_prefect.py
checks the same tags where an operator sees them, in Prefect.
"""

from __future__ import annotations

import time
from typing import Any


class EndedRuns:
    """Wraps `recorder.end` of a running `oas`: every finished run is also kept here."""

    def __init__(self, instance: Any) -> None:
        self.runs: list[Any] = []
        recorder = instance.runtime.recorder
        original = recorder.end

        def end(run: Any) -> None:
            self.runs.append(run)
            original(run)

        recorder.end = end

    def last(self, flow: str = "messages", timeout: float = 5.0) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [r for r in self.runs if r.flow_name == flow]
            if found:
                return found[-1]
            time.sleep(0.01)
        raise AssertionError(f"no {flow} run ended")

    def route_tag(self) -> str:
        return next(t for t in self.last().tags if t.startswith("route:"))
