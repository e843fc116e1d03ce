"""`oas serve` started the way a user starts it: the installed command, its own Prefect.

The child gets an environment built from nothing (not the test process's, which points
Prefect at the suite's server): a HOME and data directory of its own, free ports for `oas`
and its Prefect server, and the scripted upstream as OpenRouter. No `PREFECT_API_URL`, so
`oas serve` starts and stops the Prefect server itself. `stop()` sends SIGTERM, then kills
whatever of it is left, so nothing it started outlives a test, failed or not.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx
import psutil

ROOT = Path(__file__).resolve().parents[2]
OAS = ROOT / ".venv" / "bin" / "oas"
READY_TIMEOUT = 240.0  # Prefect's start alone takes 7-18 s here, much more when busy


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class OasServe:
    """One `oas serve` process; `url` is the API, `dashboard` the Prefect UI."""

    def __init__(self, root: Path, upstream_url: str, api_key: str, **env: str) -> None:
        self.root = root
        self.port = free_port()
        self.prefect_port = free_port()
        home = root / "home"
        home.mkdir(parents=True, exist_ok=True)
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
            "HOME": str(home),
            "LANG": "C.UTF-8",
            "TMPDIR": str(home),
            "OAS_PORT": str(self.port),
            "OAS_PREFECT_PORT": str(self.prefect_port),
            "OAS_DATA_DIR": str(root / "data"),
            "OPENROUTER_BASE_URL": upstream_url,
            "OPENROUTER_API_KEY": api_key,
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",  # no internet here
            **env,
        }
        self.url = f"http://127.0.0.1:{self.port}"
        self.dashboard = f"http://127.0.0.1:{self.prefect_port}"
        self.api = f"{self.dashboard}/api"
        self.log_path = root / "serve.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = READY_TIMEOUT) -> OasServe:
        """Start in `root` (so no `.env` of the repository is read); wait until it answers."""
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [str(OAS), "serve"],
                cwd=self.root,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while not self._ready():
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"oas serve exited with {self.process.returncode}:\n{self.output()[-4000:]}"
                )
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"oas serve not ready within {timeout:.0f}s:\n{self.output()[-4000:]}"
                )
            time.sleep(0.5)
        return self

    def _ready(self) -> bool:
        out = self.output()
        if "oas listening on" not in out or "Prefect dashboard:" not in out:
            return False
        shown = re.search(r"Prefect dashboard: (\S+)", out)
        if shown is None or shown.group(1).rstrip("/") != self.dashboard:
            raise RuntimeError(f"oas serve shows another dashboard than {self.dashboard}:\n{out}")
        try:
            return (
                httpx.get(f"{self.url}/health", timeout=2).status_code == 200
                and httpx.get(f"{self.api}/health", timeout=2).status_code == 200
                and httpx.get(self.dashboard, timeout=5).status_code == 200
            )
        except httpx.HTTPError:
            return False

    def output(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def stop(self) -> None:
        """SIGTERM `oas serve` (it stops its Prefect and database), then kill what is left.

        What is left: its descendants, and any process whose command line names this
        instance's directory (the database server, which daemonizes away from the tree).
        """
        if self.process is None:
            return
        leftovers = self._processes()
        try:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
        self.process = None
        _, alive = psutil.wait_procs([p for p in leftovers if p.is_running()], timeout=10)
        for process in alive + self._processes():
            try:
                process.kill()
            except psutil.NoSuchProcess:
                pass

    def _processes(self) -> list[psutil.Process]:
        found: list[psutil.Process] = []
        if self.process is not None:
            try:
                found = psutil.Process(self.process.pid).children(recursive=True)
            except psutil.NoSuchProcess:
                pass
        root = str(self.root)
        for process in psutil.process_iter(["cmdline"]):
            if any(root in part for part in process.info["cmdline"] or ()):
                found.append(process)
        return found
