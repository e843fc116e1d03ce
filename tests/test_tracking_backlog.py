"""When Prefect falls behind, runs that have ended before their turn are written whole.

A run is normally created Running as its request starts and finished as it ends (two
writes, and the dashboard shows its real duration). When more writes wait than the
recorder's `late_after`, a run that has already ended is created finished in one write:
Prefect then takes more runs per second (see `make bench`), and the run's state message
says how late it was recorded and how long it ran.
"""

from __future__ import annotations

import time

import httpx

from src.tracking.recorder import Recorder
from src.tracking.run import FAILED, Run
from tests.support.prefect_api import PrefectReader


def _record(prefect_api: str, late_after: int, run: Run, ended_before_create: bool) -> None:
    """A 50 ms request that fails; its create goes out after it ended, or while it runs."""
    recorder = Recorder(prefect_api, late_after=late_after)
    recorder.start()
    try:
        if ended_before_create:  # the recorder's first create waits for the flow's id
            run.started -= 0.05
            run.finish(FAILED, "upstream error 503")
            recorder.begin(run)
        else:
            recorder.begin(run)
            time.sleep(0.05)
            run.finish(FAILED, "upstream error 503")
        recorder.end(run)
        recorder.flush(20)
    finally:
        recorder.stop()


def _states(prefect_api: str, flow_run_id: str) -> list[dict]:
    return httpx.get(
        f"{prefect_api}/flow_run_states/", params={"flow_run_id": flow_run_id}, timeout=10
    ).json()


def _run(name: str) -> Run:
    return Run("messages", name, {"request_id": f"req_{name}"}, tags=["model:small"])


def test_behind_prefect_an_ended_run_is_one_write_that_says_how_late(prefect_api):
    run = _run(f"backlog-{time.time_ns()}")
    _record(prefect_api, late_after=-1, run=run, ended_before_create=True)  # -1: always behind

    recorded = PrefectReader(prefect_api).flow_run_for_request(f"req_{run.name}", state="FAILED")
    assert recorded["state"]["message"].startswith("upstream error 503 (recorded ")
    assert "late; ran 5" in recorded["state"]["message"]  # ran 50-59 ms
    assert [s["type"] for s in _states(prefect_api, recorded["id"])] == ["FAILED"]
    assert recorded["tags"] == ["model:small"]


def test_keeping_up_a_run_is_created_running_and_shows_its_duration(prefect_api):
    run = _run(f"ontime-{time.time_ns()}")
    _record(prefect_api, late_after=64, run=run, ended_before_create=True)

    recorded = PrefectReader(prefect_api).flow_run_for_request(f"req_{run.name}", state="FAILED")
    assert recorded["state"]["message"] == "upstream error 503"
    states = sorted(_states(prefect_api, recorded["id"]), key=lambda s: s["timestamp"])
    assert [s["type"] for s in states] == ["RUNNING", "FAILED"]
    assert recorded["total_run_time"] >= 0.05
