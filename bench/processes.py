"""The processes a benchmark run starts: the upstream, `oas serve`, Prefect servers.

Each runs on its own, as a user would run it, so `oas`'s CPU and memory are read from
its own process counters (psutil) and nothing else in the run is counted as its cost.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psutil

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_http(url: str, timeout: float, process: subprocess.Popen | None = None) -> float:
    """Poll `url` until it answers 200; seconds it took. Raises if the process dies."""
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{url}: the process exited with {process.returncode}")
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return time.perf_counter() - started
        except httpx.HTTPError:
            pass
        time.sleep(0.02)
    raise RuntimeError(f"{url} did not answer within {timeout:.0f}s")


def _stop(process: subprocess.Popen, timeout: float = 20.0) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


class BenchModule:
    """`python -m bench.<module> --port N ...` on a free loopback port, ready when
    `ready_path` answers 200."""

    def __init__(self, module: str, base_path: str, ready_path: str, *args: str) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}{base_path}"
        self.process = subprocess.Popen(
            [sys.executable, "-m", f"bench.{module}", "--port", str(self.port), *args],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
        )
        wait_http(f"{self.base_url}{ready_path}", 30, self.process)
        self.ps = psutil.Process(self.process.pid)

    def cpu(self) -> float:
        times = self.ps.cpu_times()
        return times.user + times.system

    def stop(self) -> None:
        _stop(self.process)


class Upstream(BenchModule):
    """The bench upstream (`bench/upstream.py`)."""

    def __init__(self, chunks: int, chunk_size: int, delay: float) -> None:
        super().__init__(
            "upstream",
            "/api/v1",
            "/models",
            *("--chunks", str(chunks), "--chunk-size", str(chunk_size), "--delay", str(delay)),
        )


class Relay(BenchModule):
    """The bare relay (`bench/relay.py`, the stack's floor) in front of `upstream_url`."""

    def __init__(self, upstream_url: str) -> None:
        super().__init__("relay", "", "/health", "--upstream", upstream_url)


class Oas:
    """`oas serve` in a scratch directory (no `.env` of the checkout is read).

    `prefect` is None (untracked), "own" (it starts its own Prefect server) or the API URL
    of a running one.
    """

    def __init__(
        self,
        upstream_url: str,
        prefect: str | None,
        *,
        backend: str = "http",
        extra_env: dict[str, str] | None = None,
        timeout: float = 120.0,
    ) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.workdir = Path(tempfile.mkdtemp(prefix="oas-bench-"))
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("OAS_", "PREFECT_", "OPENROUTER_"))
        }
        env.update(
            {
                "OAS_PORT": str(self.port),
                "OAS_DATA_DIR": str(self.workdir / "data"),
                "OAS_LOG_LEVEL": "WARNING",
                "OAS_UPSTREAM": backend,
                "OPENROUTER_BASE_URL": upstream_url,
                "OPENROUTER_API_KEY": "sk-or-bench-not-a-real-key",
                "LITELLM_LOCAL_MODEL_COST_MAP": "True",
                "PYTHONPATH": str(ROOT),
            }
        )
        if prefect is None:  # untracked
            env["OAS_TRACKING"] = "false"
        elif prefect == "own":  # oas serve starts its own Prefect server
            env["OAS_PREFECT_PORT"] = str(free_port())
        else:
            env["PREFECT_API_URL"] = prefect
        env.update(extra_env or {})
        self.log = open(self.workdir / "oas.log", "wb")  # noqa: SIM115 - closed in stop()
        started = time.perf_counter()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "src", "serve"],
            cwd=self.workdir,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        wait_http(f"{self.base_url}/health", timeout, self.process)
        self.ready_seconds = time.perf_counter() - started
        self.ps = psutil.Process(self.process.pid)
        self.settle()

    def settle(self, timeout: float = 90.0) -> None:
        """Wait until the process is idle: `oas serve` imports LiteLLM in the background
        after it is ready, and those seconds of CPU must not count against requests."""
        deadline = time.monotonic() + timeout
        quiet = 0
        while time.monotonic() < deadline and quiet < 3:
            before = self.cpu()
            time.sleep(0.5)
            quiet = quiet + 1 if self.cpu() - before < 0.03 else 0

    def cpu(self) -> float:
        """CPU seconds (user + system) this process has used so far."""
        times = self.ps.cpu_times()
        return times.user + times.system

    def rss(self) -> int:
        return self.ps.memory_info().rss

    def detailed(self) -> dict:
        return httpx.get(f"{self.base_url}/health/detailed", timeout=30).json()

    def prefect_stats(self) -> dict:
        return self.detailed()["prefect"]

    def drain(self, timeout: float = 120.0) -> dict:
        """Wait until every run it announced is written (or counted untracked)."""
        deadline = time.monotonic() + timeout
        stats = self.prefect_stats()
        while (stats.get("pending") or stats.get("writing")) and time.monotonic() < deadline:
            time.sleep(0.25)
            stats = self.prefect_stats()
        return stats

    def stop(self) -> None:
        _stop(self.process, 40)
        self.log.close()


class Prefect:
    """A local Prefect server on SQLite or PostgreSQL, started as `oas serve` starts one."""

    def __init__(self, database: str) -> None:
        from src.local_prefect.prefect_server import LocalPrefectServer

        self.database = database
        self.root = Path(tempfile.mkdtemp(prefix=f"oas-bench-prefect-{database}-"))
        self.server = LocalPrefectServer(self.root, free_port(), database)
        started = time.perf_counter()
        self.api_url = self.server.start()
        self.ready_seconds = time.perf_counter() - started

    def stop(self) -> None:
        self.server.stop()
