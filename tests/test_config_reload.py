"""Changing the OAS_CONFIG file under a running `oas serve`: `oas config reload` (SIGHUP)
applies it without dropping a request; a broken file is refused, the old rules stay and
the log names the problem. And a broken file stops `oas serve` from starting at all."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import httpx
import pytest

from tests.support.background_stream import StreamInBackground
from tests.support.serve_process import ROOT, ServeProcess, environment_without_oas
from tests.support.upstream import Reply

pytestmark = pytest.mark.e2e

FIRST = 'models: {"claude-*": first/model}\n'
SECOND = 'models: {"claude-*": second/model}\n'
BROKEN = "routes:\n  - name: r\n    when: {thinkin: true}\n    model: x/y\n"


def _oas(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "src", *args],
        cwd=ROOT,
        env={**environment_without_oas(), **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def _ask(url: str) -> None:
    httpx.post(
        f"{url}/v1/messages",
        timeout=30,
        json={
            "model": "claude-sonnet-4-5",
            "max_tokens": 20,
            "messages": [{"role": "user", "content": "hi"}],
        },
    ).raise_for_status()


def test_reload_applies_a_new_file_and_refuses_a_broken_one(upstream, tmp_path):
    config = tmp_path / "oas.yaml"
    config.write_text(FIRST)
    env = {"OAS_CONFIG": str(config), "OAS_DATA_DIR": str(tmp_path / "data")}
    serve = ServeProcess(upstream.base_url, tmp_path, env={**env, "OAS_SHUTDOWN_TIMEOUT": "5"})
    try:
        _ask(serve.url)
        assert upstream.requests[-1]["model"] == "first/model"

        # A stream under way while the file changes finishes as it began.
        upstream.queue(Reply(text="one two three four five six", chunk_size=4, delay=0.2))
        stream = StreamInBackground(serve.url)
        assert stream.started.wait(10)
        config.write_text(SECOND)
        reload = _oas("config", "reload", env=env)
        assert reload.returncode == 0, reload.stderr
        assert f"port {serve.port}" in reload.stdout
        deadline = time.monotonic() + 10
        while True:
            _ask(serve.url)
            if upstream.requests[-1]["model"] == "second/model":
                break
            assert time.monotonic() < deadline, "the new file was never applied"
            time.sleep(0.1)
        stream.join(20)
        assert stream.error is None and "message_stop" in stream.text

        # A broken file: `oas config reload` says why and signals nobody...
        config.write_text(BROKEN)
        refused = _oas("config", "reload", env=env)
        assert refused.returncode == 1
        assert str(config) in refused.stderr
        assert "routes.0.when.thinkin: unknown condition" in refused.stderr
        # ...and a server sent SIGHUP anyway keeps its rules and logs the problem.
        serve.process.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while "config reload refused" not in serve.output():
            assert time.monotonic() < deadline, serve.output()
            time.sleep(0.1)
        assert "routes.0.when.thinkin: unknown condition" in serve.output()
        _ask(serve.url)
        assert upstream.requests[-1]["model"] == "second/model"
        assert serve.process.poll() is None
    finally:
        serve.stop()


def test_serve_refuses_to_start_naming_the_file_and_the_key(tmp_path):
    config = tmp_path / "oas.yaml"
    config.write_text(BROKEN)
    result = _oas(
        "serve",
        "--no-prefect",
        env={"OAS_CONFIG": str(config), "OAS_DATA_DIR": str(tmp_path / "data")},
    )
    assert result.returncode == 2
    assert str(config) in result.stderr
    assert "routes.0.when.thinkin: unknown condition" in result.stderr
    assert "Traceback" not in result.stderr
