"""Reading what `oas` recorded, through the Prefect REST API (as the dashboard does)."""

from __future__ import annotations

import time
from typing import Any

import httpx


class PrefectReader:
    def __init__(self, api_url: str) -> None:
        self.http = httpx.Client(base_url=api_url, timeout=10)

    def flow_run_for_request(
        self, request_id: str, timeout: float = 20.0, state: str | None = None
    ) -> dict[str, Any]:
        """The flow run whose name carries this request's short id (waits for it)."""
        short = request_id.removeprefix("req_")[:8]
        deadline = time.monotonic() + timeout
        while True:
            runs = self.http.post(
                "/flow_runs/filter", json={"flow_runs": {"name": {"like_": short}}, "limit": 5}
            ).json()
            runs = [r for r in runs if r["parameters"].get("request_id") == request_id]
            if runs and (state is None or runs[0]["state_type"] == state):
                return runs[0]
            if time.monotonic() > deadline:
                raise AssertionError(f"no flow run for {request_id} (state {state}): {runs}")
            time.sleep(0.2)

    def task_runs(
        self, flow_run_id: str, expected: int, timeout: float = 20.0
    ) -> list[dict[str, Any]]:
        """Task runs of a flow run, once at least `expected` have been recorded."""
        deadline = time.monotonic() + timeout
        while True:
            runs = self.http.post(
                "/task_runs/filter",
                json={
                    "flow_runs": {"id": {"any_": [flow_run_id]}},
                    "sort": "EXPECTED_START_TIME_ASC",
                },
            ).json()
            if len(runs) >= expected and all(r["state_type"] != "RUNNING" for r in runs):
                return runs
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{len(runs)} task runs for {flow_run_id}, expected {expected}"
                )
            time.sleep(0.2)

    def artifacts(self, flow_run_id: str, timeout: float = 20.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while True:
            found = self.http.post(
                "/artifacts/filter", json={"artifacts": {"flow_run_id": {"any_": [flow_run_id]}}}
            ).json()
            if found or time.monotonic() > deadline:
                return found
            time.sleep(0.2)

    def logs(
        self, flow_run_id: str, containing: str = "", timeout: float = 20.0
    ) -> list[dict[str, Any]]:
        """The run's log lines (its Logs tab), once one of them contains `containing`."""
        deadline = time.monotonic() + timeout
        while True:
            lines = self.http.post(
                "/logs/filter",
                json={"logs": {"flow_run_id": {"any_": [flow_run_id]}}, "sort": "TIMESTAMP_ASC"},
            ).json()
            if any(containing in line["message"] for line in lines) or time.monotonic() > deadline:
                return lines
            time.sleep(0.2)

    def latest_artifact(self, key: str) -> dict[str, Any] | None:
        """The latest version of the keyed artifact `key`, as the Artifacts page lists it."""
        found = self.http.post(
            "/artifacts/latest/filter", json={"artifacts": {"key": {"any_": [key]}}}
        ).json()
        return found[0] if found else None

    def artifact_versions(self, key: str) -> list[dict[str, Any]]:
        return self.http.post(
            "/artifacts/filter", json={"artifacts": {"key": {"any_": [key]}}}
        ).json()
