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
from pathlib import Path

import httpx
import psutil

from tests.support.ports import free_port
from tests.support.serve_process import ROOT, ChildServer

OAS = ROOT / ".venv" / "bin" / "oas"
READY_TIMEOUT = 240.0  # Prefect's start alone takes 7-18 s here, much more when busy


class OasServe(ChildServer):
    """One `oas serve` process; `url` is the API, `dashboard` the Prefect UI."""

    def __init__(self, root: Path, upstream_url: str, api_key: str, **env: str) -> None:
        super().__init__(root / "serve.log")
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

    def start(self, timeout: float = READY_TIMEOUT) -> OasServe:
        """Start in `root` (so no `.env` of the repository is read); wait until it answers."""
        self.spawn([str(OAS), "serve"], cwd=self.root, env=self.env)
        self.wait_until(self._ready, timeout, every=0.5)
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

    def stop(self, grace: float = 60) -> None:
        """SIGTERM `oas serve` (it stops its Prefect and database), then kill what is left.

        What is left: its descendants, and any process whose command line names this
        instance's directory (the database server, which daemonizes away from the tree).
        """
        if self.process is None:
            return
        leftovers = self._processes()
        super().stop(grace)
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
