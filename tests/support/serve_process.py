"""`oas serve` as a child process on free loopback ports, as a user starts it.

`ChildServer` is what every such test needs: start the process with its output in a log
file, wait until it answers, read the log, and stop it (SIGTERM, then a kill), so nothing
outlives a test. `ServeProcess` runs the checkout's `python -m src serve` against the
suite's Prefect (or none); `tests.support.oas_serve.OasServe` runs the installed command
with its own Prefect.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from tests.support.ports import free_port

ROOT = Path(__file__).resolve().parents[2]


def environment_without_oas() -> dict[str, str]:
    """This process's environment minus every `OAS_*` and `PREFECT_API*` setting, so a
    child configures itself only from what the test gives it."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("OAS_", "PREFECT_API"))}


class ChildServer:
    """One server process whose output goes to `log_path`."""

    def __init__(self, log_path: Path) -> None:
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def spawn(
        self,
        args: list[str],
        *,
        cwd: Path,
        env: dict[str, str],
        preexec_fn: Callable[[], None] | None = None,
    ) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                args,
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=preexec_fn,
            )

    def wait_until(self, ready: Callable[[], bool], timeout: float, every: float = 0.1) -> None:
        """Poll `ready` until it holds; raise with the log's end if the process exits or
        `timeout` passes first."""
        assert self.process is not None, "not started"
        deadline = time.monotonic() + timeout
        while not ready():
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"oas serve exited with {self.process.returncode}:\n{self.output()[-4000:]}"
                )
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"oas serve not ready within {timeout:.0f}s:\n{self.output()[-4000:]}"
                )
            time.sleep(every)

    def output(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def stop(self, grace: float = 20) -> None:
        """SIGTERM (a graceful shutdown), then a kill if it is still there after `grace`."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(grace)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


class ServeProcess(ChildServer):
    """`python -m src serve` from the checkout with `env` on top of a clean environment;
    `open_files` starts it with that soft limit of open files (the hard limit unchanged), as
    a default system account would. Without `PREFECT_API_URL` in `env` it runs with
    `--no-prefect`."""

    process: subprocess.Popen[bytes]

    def __init__(
        self,
        base_url: str,
        data_dir: Path,
        env: dict[str, str] | None = None,
        open_files: int | None = None,
    ) -> None:
        super().__init__(data_dir / "serve.log")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        clean = environment_without_oas()
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
            assert open_files is not None
            _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
            resource.setrlimit(resource.RLIMIT_NOFILE, (open_files, hard))

        self.spawn(args, cwd=ROOT, env=clean, preexec_fn=lower_open_files if open_files else None)
        self.wait_until(self._healthy, timeout=60)

    def _healthy(self) -> bool:
        try:
            return httpx.get(f"{self.url}/health", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False
