"""Observability never costs availability: Prefect stops, requests go on, tracking resumes."""

from __future__ import annotations

import threading
import time

import pytest

from src.local_prefect.prefect_server import LocalPrefectServer
from tests.support.ports import free_port
from tests.support.prefect_api import PrefectReader
from tests.support.upstream import Reply

pytestmark = pytest.mark.e2e


def test_requests_never_fail_while_prefect_is_down_and_tracking_resumes(
    make_oas, upstream, tmp_path
):
    prefect = LocalPrefectServer(tmp_path / "prefect", port=free_port())
    api = prefect.start()
    try:
        oas = make_oas(tracking=True, prefect_api_url=api)
        client = oas.client()
        recorder = oas.runtime.recorder
        upstream.default = lambda body: Reply(text="still here", chunk_size=5)
        failures: list[BaseException] = []
        answered = [0]
        stop = threading.Event()

        def traffic() -> None:
            while not stop.is_set() and answered[0] < 1000:
                try:
                    if answered[0] % 2:
                        reply = client.messages.create(
                            model="big", max_tokens=10, messages=[{"role": "user", "content": "x"}]
                        )
                        assert reply.content[0].text == "still here"
                    else:
                        with client.messages.stream(
                            model="big", max_tokens=10, messages=[{"role": "user", "content": "x"}]
                        ) as s:
                            assert s.get_final_message().content[0].text == "still here"
                    answered[0] += 1
                except BaseException as exc:
                    failures.append(exc)
                time.sleep(0.05)  # about 15 requests a second

        worker = threading.Thread(target=traffic)
        worker.start()
        time.sleep(2)
        recorder.flush()
        assert recorder.stats.tracked > 0, recorder.stats

        prefect.stop()  # the Prefect API goes away in the middle of the traffic
        down_at = answered[0]
        time.sleep(4)
        assert answered[0] > down_at, "requests stalled while Prefect was down"
        assert not recorder.stats.prefect_up
        untracked = recorder.stats.untracked
        assert untracked > 0

        prefect.start()  # it comes back on the same port and database
        deadline = time.monotonic() + 30
        while not recorder.stats.prefect_up and time.monotonic() < deadline:
            time.sleep(0.2)
        assert recorder.stats.prefect_up, "tracking did not resume"
        tracked_before = recorder.stats.tracked
        time.sleep(2)
        stop.set()
        worker.join(30)
        recorder.flush()

        assert failures == []
        assert recorder.stats.tracked > tracked_before, "no run was tracked after Prefect came back"
        reader = PrefectReader(api)
        runs = reader.http.post("/flow_runs/count", json={}).json()
        assert runs >= recorder.stats.tracked - 5
    finally:
        prefect.stop()
