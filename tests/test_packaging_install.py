"""The deployment path, without a container engine: the image's install steps and the
compose topology's Prefect-on-PostgreSQL, run for real on this machine.

- `docker/install.sh` (what the Dockerfile's build stage runs) builds the wheel and
  installs it with the locked dependencies into a clean virtual environment; `oas serve`
  from there, configured only by environment as in the image, answers requests and
  records them to an external Prefect server.
- That Prefect server runs on PostgreSQL from Debian's `postgresql` package (the package is
  installed if missing), started on a loopback port with password authentication.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import anthropic
import httpx
import pytest

from src import __version__
from src.local_prefect.prefect_server import SERVER_TUNING
from tests.conftest import UPSTREAM_KEY
from tests.support.prefect_api import PrefectReader
from tests.support.system_postgres import SystemPostgres, free_port
from tests.support.upstream import Reply

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def system_postgres() -> Iterator[SystemPostgres]:
    pg = SystemPostgres()
    try:
        pg.start()
        yield pg
    finally:
        pg.destroy()


@pytest.fixture(scope="module")
def prefect_on_postgres(
    system_postgres: SystemPostgres, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """`prefect server start` with its database on the Debian PostgreSQL, as in compose."""
    home = tmp_path_factory.mktemp("prefect-on-pg")
    port = free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = {
        **os.environ,
        **SERVER_TUNING,
        "PREFECT_HOME": str(home),
        "PREFECT_API_URL": api,
        "PREFECT_SERVER_DATABASE_CONNECTION_URL": system_postgres.url,
    }
    log_path = home / "server.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "prefect",
                "server",
                "start",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--log-level",
                "WARNING",
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 120
        while True:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    "Prefect on PostgreSQL did not start:\n"
                    + log_path.read_text(errors="replace")[-3000:]
                )
            try:
                if httpx.get(f"{api}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.25)
        yield api
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(5)


@pytest.fixture(scope="module")
def installed_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A clean virtual environment made by the image's own install script."""
    venv = tmp_path_factory.mktemp("image") / "venv"
    # the script wants uv on PATH, as in the image; here it is the one `make` bootstrapped
    uv = shutil.which("uv") or str(ROOT / ".tools" / "bin" / "uv")
    assert Path(uv).exists(), "uv is missing: run the tests with `make test`"
    path = f"{Path(uv).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    result = subprocess.run(
        ["sh", str(ROOT / "docker" / "install.sh"), str(ROOT), str(venv)],
        env={**os.environ, "PYTHON": sys.executable, "PATH": path},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == f"oas {__version__}"
    return venv


def test_prefect_on_debian_postgresql_records_every_request(
    make_oas, upstream, prefect_on_postgres, system_postgres
):
    oas = make_oas(tracking=True, prefect_api_url=prefect_on_postgres)
    upstream.queue(Reply(text="stored in postgres"), Reply(text="streamed to postgres"))
    raw = oas.client().messages.with_raw_response.create(
        model="big", max_tokens=20, messages=[{"role": "user", "content": "hi"}]
    )
    assert raw.parse().content[0].text == "stored in postgres"
    with oas.client().messages.stream(
        model="small", max_tokens=20, messages=[{"role": "user", "content": "hi"}]
    ) as stream:
        assert stream.get_final_message().content[0].text == "streamed to postgres"
        streamed_id = stream.response.headers["request-id"]

    reader = PrefectReader(prefect_on_postgres)
    ids = [raw.headers["request-id"], streamed_id]
    for request_id, last_task in zip(ids, ["convert-response", "stream-response"], strict=True):
        run = reader.flow_run_for_request(request_id, state="COMPLETED")
        names = [t["name"] for t in reader.task_runs(run["id"], expected=6)]
        assert names[-2:] == [last_task, "record-usage"]
        assert reader.artifacts(run["id"]), "the summary artifact is missing"
    oas.runtime.recorder.flush()
    # The rows are in the Debian PostgreSQL, read back over TCP with the password.
    stored = system_postgres.sql(
        "SELECT count(*) FROM flow_run WHERE parameters->>'request_id' IN "
        f"('{ids[0]}', '{ids[1]}') AND state_type = 'COMPLETED'"
    )
    assert stored == "2"


def _serve_env(
    venv: Path, tmp: Path, upstream_url: str, prefect_api: str, port: int
) -> dict[str, str]:
    """The environment the image gives `oas serve` (Dockerfile ENV), pointed at loopback."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("OAS_", "OPENROUTER_", "PYTHON", "VIRTUAL_ENV"))
    }
    env.update(
        {
            "PATH": f"{venv / 'bin'}:{env.get('PATH', '')}",
            "HOME": str(tmp),
            "PREFECT_HOME": str(tmp / "prefect-home"),
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",
            "OAS_ENV": "production",
            "OAS_HOST": "127.0.0.1",  # the image says 0.0.0.0; tests stay on loopback
            "OAS_PORT": str(port),
            "OAS_DATA_DIR": str(tmp / "data"),
            "OAS_SMALL_MODEL": "openai/gpt-4o",  # one the scripted upstream lists
            "OPENROUTER_API_KEY": UPSTREAM_KEY,
            "OPENROUTER_BASE_URL": upstream_url,
            "PREFECT_API_URL": prefect_api,
        }
    )
    return env


def test_the_image_install_steps_give_a_server_that_answers_and_records(
    installed_venv, upstream, prefect_on_postgres, tmp_path
):
    venv = installed_venv
    probe = subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-c",
            "import importlib.metadata as m, src; "
            "print(m.version('openrouter-anthropic-server'), src.__file__)",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )
    version, location = probe.stdout.split()
    assert version == __version__
    assert location.startswith(str(venv)), "oas must run from the wheel, not the source tree"

    port = free_port()
    env = _serve_env(venv, tmp_path, upstream.base_url, prefect_on_postgres, port)
    doctor = subprocess.run(
        [str(venv / "bin" / "oas"), "doctor", "--json"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    report = json.loads(doctor.stdout)
    assert doctor.returncode == 0, report
    assert {c["name"]: c["status"] for c in report["checks"]}["prefect"] == "ok"

    server = subprocess.Popen(
        [str(venv / "bin" / "oas"), "serve"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    output = ""
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 90
        while True:
            assert server.poll() is None, server.communicate()[0].decode(errors="replace")
            assert time.monotonic() < deadline, "oas serve did not answer /health"
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.25)

        upstream.queue(Reply(text="from the installed wheel"))
        client = anthropic.Anthropic(base_url=url, api_key="unused", max_retries=0)
        raw = client.messages.with_raw_response.create(
            model="claude-3-5-haiku-latest",
            max_tokens=20,
            messages=[{"role": "user", "content": "hello"}],
        )
        assert raw.parse().content[0].text == "from the installed wheel"
        assert upstream.requests[-1]["model"] == "openai/gpt-4o"
        run = PrefectReader(prefect_on_postgres).flow_run_for_request(
            raw.headers["request-id"], state="COMPLETED"
        )
        assert "upstream:openai/gpt-4o" in run["tags"]
    finally:
        server.send_signal(signal.SIGTERM)  # what `docker stop` sends
        try:
            output = server.communicate(timeout=60)[0].decode(errors="replace")
        except subprocess.TimeoutExpired:
            server.kill()
            raise
    assert server.returncode == 0, output
    assert "Traceback" not in output, output
    assert UPSTREAM_KEY not in output
    # OAS_ENV=production, as in the image: log lines are JSON.
    logs = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    assert any(e.get("event") == "request" and e.get("status") == 200 for e in logs), output
