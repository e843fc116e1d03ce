"""`oas serve` as a child process on a free loopback port, as a user starts it."""

from __future__ import annotations

import os
import resource
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServeProcess:
    """`python -m src serve` with `env` on top of a clean environment; `open_files` starts
    it with that soft limit of open files (the hard limit unchanged), as a default system
    account would. Without `PREFECT_API_URL` in `env` it runs with `--no-prefect`."""

    def __init__(
        self,
        base_url: str,
        data_dir: Path,
        env: dict[str, str] | None = None,
        open_files: int | None = None,
    ) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        clean = {k: v for k, v in os.environ.items() if not k.startswith(("OAS_", "PREFECT_API"))}
        clean.update(
            {
                "OPENROUTER_BASE_URL": base_url,
                "OPENROUTER_API_KEY": "sk-or-v1-test-key",
                "OAS_DATA_DIR": str(data_dir / "data"),
                "OAS_PORT": str(self.port),
                "OAS_RETRIES": "0",
                **(env or {}),
            }
        )
        args = [sys.executable, "-m", "src", "serve"]
        if "PREFECT_API_URL" not in clean:
            args.append("--no-prefect")

        def lower_open_files() -> None:
            _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
            resource.setrlimit(resource.RLIMIT_NOFILE, (open_files, hard))

        data_dir.mkdir(parents=True, exist_ok=True)
        self.log = open(data_dir / "serve.log", "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            args,
            cwd=ROOT,
            env=clean,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            preexec_fn=lower_open_files if open_files else None,
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
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self.log.close()
