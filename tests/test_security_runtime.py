"""What a red team tried against a running `oas serve`, and what holds.

One `oas serve` is started the way a user starts it: its own Prefect server on the
embedded PostgreSQL, no PREFECT_API_URL, the upstream key and client keys in its
environment, a managed MCP server with a token of its own. Then, in order: every process
it started is searched for a secret; the database is asked in without the password;
the data directory's modes are read; a request that fails inside `oas` is looked for
in the logs; the Prefect server, then PostgreSQL, is killed and must come back with
recording; and `oas` itself is killed with SIGKILL, after which nothing of it may keep
running and the next start must work.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from src.local_prefect.children import alive, command_line
from tests.conftest import UPSTREAM_KEY
from tests.support.ports import free_port
from tests.support.prefect_api import PrefectReader

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]
CLIENT_KEY = "oas-client-key-9f8e7d6c5b4a39281706"
MCP_TOKEN = "mcp-token-0a1b2c3d4e5f60718293"
SECRETS = {"upstream key": UPSTREAM_KEY, "client key": CLIENT_KEY, "MCP token": MCP_TOKEN}
USER = [{"role": "user", "content": "hello"}]


class Upstream(ThreadingHTTPServer):
    """A chat-completions upstream; a request that says "break" gets an answer whose usage
    `oas` cannot read, so the request fails inside `oas` with a traceback in its log."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _UpstreamHandler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_port}/api/v1"


class _UpstreamHandler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        broken = "break" in json.dumps(body["messages"])
        answer = {
            "id": "c1",
            "object": "chat.completion",
            "model": body["model"],
            "choices": [
                {
                    "index": 0,
                    "finish_reason": "stop",
                    "message": {"role": "assistant", "content": "hi there"},
                }
            ],
            "usage": {"prompt_tokens": "many" if broken else 3, "completion_tokens": 2},
        }
        data = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


class Served:
    """A running `oas serve` subprocess and where it keeps things."""

    def __init__(self, base: Path, upstream: Upstream) -> None:
        self.base = base
        self.data_dir = base / "data"
        self.log_file = base / "logs" / "oas.log"
        self.stderr_path = base / "stderr.txt"
        self.port = free_port()
        self.prefect_port = free_port()
        config = base / "oas.yaml"
        config.write_text(
            json.dumps(
                {
                    "mcp_servers": [
                        {
                            "name": "tools",
                            "command": [sys.executable, "-m", "tests.support.mcp_server", "stdio"],
                            "cwd": str(ROOT),
                            "env": {"MCP_TOKEN": "${TOOLS_MCP_TOKEN}"},
                        }
                    ]
                }
            )
        )
        home = base / "home"
        home.mkdir(exist_ok=True)
        # Built here, not copied: conftest's PREFECT_API_URL must not reach it.
        self.env = {
            "PATH": os.environ["PATH"],
            "HOME": str(home),
            "LANG": "C.UTF-8",
            "OPENROUTER_API_KEY": UPSTREAM_KEY,
            "OPENROUTER_BASE_URL": upstream.base_url,
            "OAS_API_KEYS": f"{CLIENT_KEY},another-client-key-000111",
            "OAS_DATA_DIR": str(self.data_dir),
            "OAS_PORT": str(self.port),
            "OAS_PREFECT_PORT": str(self.prefect_port),
            "OAS_LOG_FILE": str(self.log_file),
            "OAS_CONFIG": str(config),
            "TOOLS_MCP_TOKEN": MCP_TOKEN,
            "OAS_RETRIES": "0",
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",
            "PYTHONPATH": str(ROOT),
        }
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def prefect_api(self) -> str:
        return f"http://127.0.0.1:{self.prefect_port}/api"

    def start(self, timeout: float = 180.0) -> None:
        with open(self.stderr_path, "ab") as err:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "src", "serve"],
                env=self.env,
                cwd=self.base,
                stdout=err,
                stderr=err,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.stderr()[-3000:]
            try:
                health = self.detailed()
                if (
                    health["mcp_servers"]
                    and health["mcp_servers"][0]["state"] == "running"
                    and health["prefect"]["prefect_up"]
                ):
                    return
            except (httpx.HTTPError, KeyError, ValueError):
                pass
            time.sleep(0.5)
        raise AssertionError(f"oas serve did not come up:\n{self.stderr()[-3000:]}")

    def detailed(self) -> dict:
        return httpx.get(
            f"{self.url}/health/detailed", headers={"x-api-key": CLIENT_KEY}, timeout=10
        ).json()

    def post(self, content: str = "hello") -> httpx.Response:
        return httpx.post(
            f"{self.url}/v1/messages",
            headers={"x-api-key": CLIENT_KEY},
            json={
                "model": "big",
                "max_tokens": 5,
                "messages": [{"role": "user", "content": content}],
            },
            timeout=60,
        )

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def descendants(self) -> list[int]:
        assert self.process is not None
        return descendants_of(self.process.pid)


def descendants_of(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", "rb") as f:
                    ppid = int(f.read().rsplit(b")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def environ(pid: int) -> dict[str, str]:
    with open(f"/proc/{pid}/environ", "rb") as f:
        pairs = f.read().decode(errors="replace").split("\0")
    return dict(p.split("=", 1) for p in pairs if "=" in p)


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    # Not under pytest's tmp dir: as root, the database's user must traverse the folders
    # above the data directory, and every pytest session resets /tmp/pytest-of-root to 0700.
    base = Path(tempfile.mkdtemp(prefix="oas-served-"))
    upstream = Upstream()
    instance = Served(base, upstream)
    instance.start()
    yield instance
    if instance.process is not None and instance.process.poll() is None:
        instance.process.terminate()
        instance.process.wait(60)
    upstream.shutdown()
    shutil.rmtree(base, ignore_errors=True)


def test_no_process_oas_started_holds_a_secret_it_was_not_given(served):
    kinds: dict[str, int] = {}
    for pid in served.descendants():
        try:
            env, command = environ(pid), command_line(pid)
        except OSError:
            continue  # ended meanwhile
        kind = (
            "postgres"
            if "postgres" in command
            else "prefect"
            if "prefect" in command
            else "mcp"
            if "mcp_server" in command
            else command
        )
        kinds[kind] = kinds.get(kind, 0) + 1
        values = "\n".join(env.values())
        for name, secret in SECRETS.items():
            if kind == "mcp" and name == "MCP token":
                assert env.get("MCP_TOKEN") == MCP_TOKEN  # its configuration names it
                continue
            assert secret not in values, f"the {name} is in the environment of {command}"
    # PostgreSQL (postmaster and its workers), the Prefect server, the MCP server: all seen
    assert kinds.get("postgres", 0) >= 2 and kinds.get("prefect") and kinds.get("mcp"), kinds


def test_the_database_wants_its_password(served):
    from src.local_prefect.postgres import _bin

    pg = served.data_dir / "prefect" / "postgres"
    socket_dir = pg / "socket"
    assert stat.S_IMODE(socket_dir.stat().st_mode) == 0o700
    assert "trust" not in (pg / "pgdata" / "pg_hba.conf").read_text().split("\n", 1)[1]
    psql = [_bin("psql"), "-h", str(socket_dir), "-U", "postgres", "-w", "-d", "prefect", "-tAc"]
    clean = {"PATH": os.environ["PATH"]}
    # As root (it passes any folder's mode): no password, no way in.
    refused = subprocess.run([*psql, "SELECT 1"], env=clean, capture_output=True, text=True)
    assert refused.returncode != 0 and "password" in refused.stderr, refused.stderr
    # Another local user does not even reach the socket.
    if os.geteuid() == 0:
        nobody = subprocess.run(
            [*psql, "SELECT 1"], env=clean, capture_output=True, text=True, user="nobody", cwd="/"
        )
        assert nobody.returncode != 0 and "Permission denied" in nobody.stderr, nobody.stderr
    password = (pg / "password").read_text().strip()
    assert stat.S_IMODE((pg / "password").stat().st_mode) == 0o600
    # With the password, the attack itself finds no secret in the server's environment.
    env_dump = subprocess.run(
        [
            *psql,
            "CREATE TEMP TABLE e (line text); COPY e FROM PROGRAM 'env'; "
            "SELECT string_agg(line, chr(10)) FROM e",
        ],
        env={**clean, "PGPASSWORD": password},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert env_dump.returncode == 0, env_dump.stderr
    assert "PATH=" in env_dump.stdout
    for name, secret in SECRETS.items():
        assert secret not in env_dump.stdout, f"the {name} is in the database server's env"
    # The password is in no log and in no answer of oas.
    assert password not in served.stderr()
    assert password not in json.dumps(served.detailed())


def test_a_request_failing_inside_oas_leaves_no_key_in_any_log(served):
    ok = served.post("hello")
    assert ok.status_code == 200
    failed = served.post("please break")
    assert failed.status_code == 500, failed.text
    request_id = failed.headers["request-id"]
    deadline = time.monotonic() + 10
    while request_id not in served.log_file.read_text() and time.monotonic() < deadline:
        time.sleep(0.2)
    logs = {"stderr": served.stderr(), "OAS_LOG_FILE": served.log_file.read_text()}
    for where, text in logs.items():
        assert request_id in text and "Traceback" in text, f"the failure is not in {where}"
        for name, secret in SECRETS.items():
            assert secret not in text, f"the {name} is in {where}"
        assert "x-api-key" not in text, f"request headers (locals) are in {where}"


def test_files_under_the_data_dir_are_private(served):
    loose = []
    for path in [served.data_dir, *served.data_dir.rglob("*"), served.log_file]:
        mode = stat.S_IMODE(path.lstat().st_mode)
        if path.is_symlink():
            continue
        # Folders 0700; as root, 0710 where the database's own user passes by group.
        allowed = 0o010 if path.is_dir() and os.geteuid() == 0 else 0
        if mode & 0o077 & ~allowed:
            loose.append(f"{oct(mode)} {path}")
    assert not loose, "\n".join(loose)
    assert any((served.data_dir / "payloads" / "requests").iterdir()), "payloads were stored"


def test_the_prefect_server_comes_back_when_it_dies_and_runs_are_recorded_again(served):
    before = served.detailed()["prefect"]["local_server"]
    assert before["state"] == "running" and before["restarts"] == 0
    os.kill(before["pid"], signal.SIGKILL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        now = served.detailed()["prefect"]
        if now["local_server"]["restarts"] == 1 and now["local_server"]["state"] == "running":
            break
        time.sleep(0.5)
    else:
        raise AssertionError(f"not restarted: {served.detailed()['prefect']}")
    assert now["local_server"]["pid"] != before["pid"]
    assert not alive(before["pid"]), "the dead server was not reaped (a zombie)"
    deadline = time.monotonic() + 90
    while True:  # runs that end while the recorder still probes a dead API are untracked
        response = served.post("recorded again?")
        assert response.status_code == 200
        try:
            run = PrefectReader(served.prefect_api).flow_run_for_request(
                response.headers["request-id"], timeout=15, state="COMPLETED"
            )
            break
        except (AssertionError, httpx.HTTPError):
            assert time.monotonic() < deadline, "no run recorded after Prefect came back"
    assert run["state_type"] == "COMPLETED"
    assert "the Prefect server is gone; starting it again" in served.stderr()


def test_postgresql_comes_back_when_it_dies_and_runs_are_recorded_again(served):
    pid_file = served.data_dir / "prefect" / "postgres" / "pgdata" / "postmaster.pid"
    postmaster = int(pid_file.read_text().split("\n", 1)[0])
    os.kill(postmaster, signal.SIGKILL)
    deadline = time.monotonic() + 60
    while served.detailed()["prefect"]["local_server"]["database_restarts"] < 1:
        assert time.monotonic() < deadline, served.stderr()[-3000:]
        time.sleep(0.5)
    assert not alive(postmaster)
    deadline = time.monotonic() + 90
    while True:  # the Prefect server's pooled connections died with the database
        response = served.post("recorded after the database came back?")
        assert response.status_code == 200
        try:
            PrefectReader(served.prefect_api).flow_run_for_request(
                response.headers["request-id"], timeout=15, state="COMPLETED"
            )
            break
        except (AssertionError, httpx.HTTPError):
            assert time.monotonic() < deadline, "no run recorded after PostgreSQL came back"


def test_kill_9_of_oas_leaves_nothing_running_and_the_next_start_works(served):
    children = served.descendants()
    assert children
    commands = {pid: command_line(pid) for pid in children}
    # everything `oas` started must end with it
    served.process.send_signal(signal.SIGKILL)
    served.process.wait(10)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        left = [pid for pid in children if alive(pid) and command_line(pid) == commands[pid]]
        if not left:
            break
        time.sleep(0.5)
    assert not left, "still running after kill -9 of oas: " + "; ".join(
        commands[pid] for pid in left
    )

    served.start()  # same data dir and ports: it takes over what the killed one left
    assert served.post("hello again").status_code == 200
    children = served.descendants()
    served.process.send_signal(signal.SIGTERM)
    assert served.process.wait(90) == 0
    assert not [pid for pid in children if alive(pid)], "SIGTERM left processes behind"
