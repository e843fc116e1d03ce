"""`oas serve` started the way a user starts it: no PREFECT_API_URL, so it runs its own
Prefect server, and everything it does (recorded runs, deployments, the runner's flow runs)
goes to that one server; no throwaway server is ever started. Ctrl-C stops it all quietly.
"""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import anthropic
import httpx
import pytest

from tests.conftest import UPSTREAM_KEY
from tests.support.ports import free_port
from tests.support.upstream import Reply

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

OAS = Path(__file__).resolve().parents[1] / ".venv" / "bin" / "oas"


class Serve:
    """`oas serve` as a child process, its output collected as it comes."""

    def __init__(self, env: dict[str, str], cwd: Path) -> None:
        self.process = subprocess.Popen(
            [str(OAS), "serve"], env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.decode(errors="replace"))

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def interrupt(self, timeout: float = 90.0) -> int:
        """Ctrl-C, as a terminal sends it; the exit code."""
        self.process.send_signal(signal.SIGINT)
        code = self.process.wait(timeout)
        self._reader.join(5)
        return code

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


def _wait_for(get: Any, what: str, serve: Serve, timeout: float = 300.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if serve.process.poll() is not None:
            raise AssertionError(f"oas serve exited while waiting for {what}:\n{serve.output}")
        try:
            if (found := get()) is not None:
                return found
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"no {what} within {timeout:.0f}s:\n{serve.output}")


def test_oas_serve_uses_its_own_prefect_for_everything(upstream, session_dir):
    # not pytest's tmp_path: as root, the database runs as a system user, and pytest makes
    # its base directory private again whenever another pytest starts
    tmp_path = Path(tempfile.mkdtemp(prefix="serve-", dir=session_dir))
    home, data = tmp_path / "home", tmp_path / "data"
    home.mkdir()
    port, prefect_port = free_port(), free_port()
    # a user's environment: no Prefect settings at all (the test session sets some), and
    # no OAS_ ones other tests left behind (`serve --no-prefect` sets OAS_TRACKING=false)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "OAS_"))}
    env.update(
        HOME=str(home),
        OAS_DATA_DIR=str(data),
        OAS_PORT=str(port),
        OAS_PREFECT_PORT=str(prefect_port),
        OPENROUTER_BASE_URL=upstream.base_url,
        OPENROUTER_API_KEY=UPSTREAM_KEY,
        OAS_RETRIES="0",
    )
    api = f"http://127.0.0.1:{prefect_port}/api"
    prefect = httpx.Client(base_url=api, timeout=10)
    serve = Serve(env, tmp_path)
    try:

        def deployment(name: str) -> dict[str, Any] | None:
            response = prefect.get(f"/deployments/name/{name}")
            return response.json() if response.status_code == 200 else None

        replay = _wait_for(lambda: deployment("replay/replay"), "replay deployment", serve)
        messages = _wait_for(lambda: deployment("messages/messages"), "messages deployment", serve)
        _wait_for(
            lambda: httpx.get(f"http://127.0.0.1:{port}/health").status_code == 200 or None,
            "oas",
            serve,
        )

        upstream.queue(Reply(status=503, error={"code": 503, "message": "provider overloaded"}))
        client = anthropic.Anthropic(
            base_url=f"http://127.0.0.1:{port}", api_key="x", max_retries=0
        )
        with pytest.raises(anthropic.APIStatusError) as caught:
            client.messages.create(
                model="small", max_tokens=20, messages=[{"role": "user", "content": "hello"}]
            )
        request_id = caught.value.response.headers["request-id"]

        def recorded() -> dict[str, Any] | None:
            runs = prefect.post(
                "/flow_runs/filter", json={"flow_runs": {"state": {"type": {"any_": ["FAILED"]}}}}
            ).json()
            return next((r for r in runs if r["parameters"].get("request_id") == request_id), None)

        original = _wait_for(recorded, "the recorded run", serve, timeout=60)
        assert original["deployment_id"] == messages["id"]

        # `prefect deployment run replay/replay -p flow_run_id=...`, through the API
        upstream.queue(Reply(text="hello again"))
        created = prefect.post(
            f"/deployments/{replay['id']}/create_flow_run",
            json={"parameters": {"flow_run_id": original["id"]}},
        ).json()

        def finished() -> dict[str, Any] | None:
            run = prefect.get(f"/flow_runs/{created['id']}").json()
            return run if run["state_type"] in ("COMPLETED", "FAILED", "CRASHED") else None

        run = _wait_for(finished, "the replay to finish", serve, timeout=240)
        assert run["state_type"] == "COMPLETED", run["state"]
        assert run["name"] == f"replay · {original['name']}"
    finally:
        if serve.process.poll() is None:
            code = serve.interrupt()
        else:
            code = serve.process.returncode
        serve.kill()
    output = serve.output
    assert code == 0, output
    assert "Traceback" not in output, output
    assert "temporary server" not in output.lower(), output
    assert not list(home.rglob("*.db")), "a Prefect database appeared under HOME"
    with pytest.raises(httpx.HTTPError):  # its Prefect server stopped with it
        httpx.get(f"{api}/health", timeout=2)
