"""The local Prefect server's database and processes across starts: a cluster an older
`oas` made with `trust` gets a password, leftovers of an `oas` killed with SIGKILL are
stopped by the next start, and a second `oas` on a data directory in use is refused."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from src.local_prefect.children import alive, command_line
from src.local_prefect.postgres import EmbeddedPostgres, _bin
from src.local_prefect.prefect_server import LocalPrefectServer
from tests.support.ports import free_port

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture
def base() -> Iterator[Path]:
    # Not under pytest's tmp dir: as root the database's user must traverse the folders
    # above it, and every pytest session resets /tmp/pytest-of-root to 0700.
    path = Path(tempfile.mkdtemp(prefix="oas-takeover-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _psql(pg: EmbeddedPostgres, password: str | None) -> subprocess.CompletedProcess[str]:
    env = {"PATH": os.environ["PATH"], **({"PGPASSWORD": password} if password else {})}
    return subprocess.run(
        [
            _bin("psql"),
            "-h",
            str(pg.socket_dir),
            "-U",
            "postgres",
            "-w",
            "-d",
            "prefect",
            "-tAc",
            "SELECT 1",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_a_cluster_made_with_trust_gets_a_password_on_the_next_start(base, caplog):
    pg = EmbeddedPostgres(base / "prefect" / "postgres", private_root=base)
    pg.start()
    pg.stop()
    # What an older oas left: `trust` for everyone on the socket, and no password file.
    (pg.pgdata / "pg_hba.conf").write_text("local all all trust\n")
    pg.password_file.unlink()

    again = EmbeddedPostgres(base / "prefect" / "postgres", private_root=base)
    again.start()
    try:
        assert "trust" not in (again.pgdata / "pg_hba.conf").read_text().split("\n", 1)[1]
        refused = _psql(again, None)
        assert refused.returncode != 0 and "password" in refused.stderr
        assert _psql(again, again.password).stdout.strip() == "1"
        assert "securing the PostgreSQL cluster" in caplog.text
    finally:
        again.stop()


def _fake_process(*words: str) -> subprocess.Popen[bytes]:
    """A process whose command line carries `words` (as a leftover's would)."""
    process = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(120)", *words], start_new_session=True
    )
    deadline = time.monotonic() + 10
    while words[-1] not in command_line(process.pid) and time.monotonic() < deadline:
        time.sleep(0.01)  # until it runs its own program, not the copy of its parent
    return process


def test_the_next_start_stops_a_prefect_server_a_killed_oas_left_running(base, caplog):
    leftover = _fake_process("prefect", "server", "start")
    gone_oas = _fake_process("oas", "serve")
    gone_oas.kill()
    gone_oas.wait()
    server = LocalPrefectServer(base, port=free_port(), database="sqlite")
    server.root.mkdir(parents=True)
    server.pid_file.write_text(
        json.dumps(
            {
                "oas": gone_oas.pid,
                "oas_command": "oas serve",
                "prefect": leftover.pid,
                "postgres": None,
            }
        )
    )
    try:
        server.start()
        leftover.wait(20)  # stopped (and reaped here, its parent)
        assert "taking over" in caplog.text
        assert json.loads(server.pid_file.read_text())["prefect"] == server.process.pid
    finally:
        server.stop()
        if leftover.poll() is None:
            leftover.kill()


def test_a_second_oas_on_a_data_dir_in_use_is_refused(base):
    running_oas = _fake_process("oas", "serve")
    try:
        server = LocalPrefectServer(base, port=free_port(), database="sqlite")
        server.root.mkdir(parents=True)
        server.pid_file.write_text(
            json.dumps(
                {
                    "oas": running_oas.pid,
                    "oas_command": command_line(running_oas.pid),
                    "prefect": None,
                    "postgres": None,
                }
            )
        )
        with pytest.raises(RuntimeError, match="another oas"):
            server.start()
        assert server.process is None and alive(running_oas.pid)
    finally:
        running_oas.kill()
        running_oas.wait()
