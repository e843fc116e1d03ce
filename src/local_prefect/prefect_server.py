"""A local Prefect server for `oas serve` when `PREFECT_API_URL` is not set.

Its database lives under the data directory (PostgreSQL by default, SQLite on request);
the dashboard is on 127.0.0.1:`OAS_PREFECT_PORT` (4200). Services `oas` does not use are
turned off and the recorders' batches raised, which measurably cuts the server's own
write contention.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import structlog

from src.local_prefect.postgres import EmbeddedPostgres

log = structlog.get_logger("oas.prefect")

SERVER_TUNING = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_SERVER_UI_SHOW_PROMOTIONAL_CONTENT": "false",
    "PREFECT_SERVER_SERVICES_SCHEDULER_ENABLED": "false",
    "PREFECT_SERVER_SERVICES_PAUSE_EXPIRATIONS_ENABLED": "false",
    "PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_BATCH_SIZE": "200",
    "PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_READ_BATCH_SIZE": "200",
    "PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_FLUSH_INTERVAL": "1",
    "PREFECT_SERVER_SERVICES_EVENT_PERSISTER_BATCH_SIZE": "500",
    "PREFECT_SERVER_SERVICES_EVENT_PERSISTER_READ_BATCH_SIZE": "200",
    "PREFECT_SERVER_SERVICES_EVENT_PERSISTER_FLUSH_INTERVAL": "1",
    "PREFECT_SERVER_DATABASE_SQLALCHEMY_POOL_SIZE": "10",
    "PREFECT_SERVER_DATABASE_SQLALCHEMY_MAX_OVERFLOW": "20",
    "PREFECT_LOGGING_LEVEL": "WARNING",
}


def _die_with_parent() -> None:
    """Linux: SIGTERM the server if the process that started it dies, even by SIGKILL."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class LocalPrefectServer:
    """`prefect server start` as a child process, with its database, until `stop()`."""

    def __init__(self, data_dir: Path, port: int = 4200, database: str = "postgres",
                 host: str = "127.0.0.1") -> None:
        self.root = Path(data_dir).absolute() / "prefect"
        self.port = port
        self.host = host
        self.database = database
        self.postgres = EmbeddedPostgres(self.root / "postgres") if database == "postgres" else None
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def api_url(self) -> str:
        return f"http://{self.host}:{self.port}/api"

    @property
    def dashboard_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def _database_url(self) -> str:
        if self.postgres is not None:
            return self.postgres.start()
        return f"sqlite+aiosqlite:///{self.root / 'prefect.db'}"

    def _port_busy(self) -> bool:
        try:
            httpx.get(f"{self.api_url}/health", timeout=0.5)
            return True
        except httpx.HTTPError:
            return False

    def start(self, timeout: float = 90.0) -> str:
        """Start and wait until healthy; returns the API URL."""
        if self._port_busy():
            raise RuntimeError(
                f"Something already answers on {self.dashboard_url}. To use that Prefect server "
                f"set PREFECT_API_URL={self.api_url}; or pick another port with OAS_PREFECT_PORT."
            )
        self.root.mkdir(parents=True, exist_ok=True)
        env = {
            **os.environ,
            **SERVER_TUNING,
            "PREFECT_HOME": str(self.root / "home"),
            "PREFECT_SERVER_DATABASE_CONNECTION_URL": self._database_url(),
            "PREFECT_API_URL": self.api_url,
        }
        log_path = self.root / "server.log"
        with open(log_path, "ab") as log_file:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "prefect", "server", "start", "--host", self.host,
                 "--port", str(self.port), "--log-level", "WARNING"],
                env=env, stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True, preexec_fn=_die_with_parent,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                tail = log_path.read_text(errors="replace")[-3000:]
                self.stop()
                raise RuntimeError(f"The Prefect server exited at start:\n{tail}")
            try:
                if httpx.get(f"{self.api_url}/health", timeout=1.0).status_code == 200:
                    log.info("Prefect server ready", dashboard=self.dashboard_url,
                             database=self.database)
                    return self.api_url
            except httpx.HTTPError:
                pass
            time.sleep(0.25)
        self.stop()
        raise RuntimeError(f"The Prefect server did not become healthy within {timeout:.0f}s "
                           f"(log: {log_path})")

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL) and its database."""
        if self.process is not None and self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
                self.process.wait(15)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                try:
                    os.killpg(self.process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.process.wait(5)
        self.process = None
        if self.postgres is not None:
            self.postgres.stop()
