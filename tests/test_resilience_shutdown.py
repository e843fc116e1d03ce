"""Graceful shutdown of a real `oas serve`: SIGTERM stops accepting at once, lets running
streams finish within OAS_SHUTDOWN_TIMEOUT, cuts the rest (closing their upstream
connections, their flow runs Cancelled), and exits 0."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.support.prefect_api import PrefectReader
from tests.support.upstream import Reply

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServeProcess:
    def __init__(
        self,
        upstream,
        tmp_path: Path,
        shutdown_timeout: float,
        prefect_api: str | None = None,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OAS_", "PREFECT_API"))}
        env.update(
            {
                "OPENROUTER_BASE_URL": upstream.base_url,
                "OPENROUTER_API_KEY": "sk-or-v1-test-key",
                "OAS_DATA_DIR": str(tmp_path / "data"),
                "OAS_SHUTDOWN_TIMEOUT": str(shutdown_timeout),
                "OAS_PORT": str(self.port),
                "OAS_RETRIES": "0",
            }
        )
        env.update(extra_env or {})
        args = [sys.executable, "-m", "src", "serve"]
        if prefect_api:
            env["PREFECT_API_URL"] = prefect_api
        else:
            args.append("--no-prefect")
        self.log = open(tmp_path / "serve.log", "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            args,
            cwd=ROOT,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert self.process.poll() is None, self.output()
            assert time.monotonic() < deadline, "oas serve did not start"
            time.sleep(0.1)

    def output(self) -> str:
        self.log.flush()
        return Path(self.log.name).read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self.log.close()


@pytest.fixture
def start_serve(upstream, tmp_path):
    started: list[ServeProcess] = []

    def factory(**kwargs) -> ServeProcess:
        started.append(ServeProcess(upstream, tmp_path, **kwargs))
        return started[-1]

    yield factory
    for process in started:
        process.stop()


class StreamInBackground(threading.Thread):
    """A streaming request read to its end in a thread; `started` once text flows."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.started = threading.Event()
        self.text = ""
        self.request_id = ""
        self.error: Exception | None = None
        self.start()

    def run(self) -> None:
        try:
            with httpx.stream(
                "POST",
                f"{self.url}/v1/messages",
                timeout=60,
                json={
                    "model": "big",
                    "max_tokens": 100,
                    "stream": True,
                    "messages": [{"role": "user", "content": "count slowly"}],
                },
            ) as response:
                self.request_id = response.headers["request-id"]
                for line in response.iter_lines():
                    self.text += line + "\n"
                    if "text_delta" in line:
                        self.started.set()
        except httpx.HTTPError as exc:
            self.error = exc
        finally:
            self.started.set()


def refused(url: str) -> bool:
    try:
        httpx.get(f"{url}/health", timeout=1)
    except httpx.ConnectError:
        return True
    except httpx.HTTPError:
        return False
    return False


def test_sigterm_lets_a_running_stream_finish_then_exits(start_serve, upstream):
    serve = start_serve(shutdown_timeout=20)
    upstream.queue(Reply(text="one two three four five six seven eight", chunk_size=4, delay=0.2))
    stream = StreamInBackground(serve.url)
    assert stream.started.wait(10)
    serve.process.send_signal(signal.SIGTERM)

    deadline = time.monotonic() + 5
    while not refused(serve.url) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert refused(serve.url), "still accepting connections after SIGTERM"
    assert stream.is_alive(), "the stream ended before the listener closed"

    stream.join(20)
    assert stream.error is None
    assert "message_stop" in stream.text and '"text":"ght"' in stream.text
    assert serve.process.wait(20) == 0, serve.output()
    assert upstream.disconnects == 0


def test_streams_past_the_bound_are_cut_and_recorded_cancelled(start_serve, upstream, prefect_api):
    serve = start_serve(shutdown_timeout=1, prefect_api=prefect_api)
    upstream.queue(Reply(text="word " * 300, chunk_size=5, delay=0.1))  # about 30 s
    stream = StreamInBackground(serve.url)
    assert stream.started.wait(10)
    sent_at = time.monotonic()
    serve.process.send_signal(signal.SIGTERM)
    assert serve.process.wait(20) == 0, serve.output()
    assert time.monotonic() - sent_at < 15  # the bound (1 s) plus the recorder's drain
    stream.join(10)
    assert "message_stop" not in stream.text
    deadline = time.monotonic() + 5
    while upstream.disconnects == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert upstream.disconnects == 1  # the upstream request was closed, not left running
    run = PrefectReader(prefect_api).flow_run_for_request(stream.request_id, state="CANCELLED")
    assert run["state_type"] == "CANCELLED"
