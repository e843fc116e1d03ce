"""A private PostgreSQL cluster from Debian's `postgresql` package, on a loopback port.

What a team's deployment runs Prefect on (docker-compose.yml uses the same major version).
The package is installed with apt-get when it is missing (CI machines start fresh); the
cluster is made with initdb and started with pg_ctl as a non-root user, with password
authentication over TCP as a real deployment has it, and deleted afterwards.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

from tests.support.ports import free_port

INSTALL_HINT = "install Debian's PostgreSQL: sudo apt-get install -y postgresql"


def _bindir() -> Path | None:
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    return found[-1].parent if found else None


def ensure_installed(timeout: float = 900) -> Path:
    """The bin directory of the newest installed PostgreSQL; installs the package if needed."""
    bindir = _bindir()
    if bindir is not None:
        return bindir
    if os.geteuid() != 0:
        raise RuntimeError(
            "PostgreSQL is not installed and this user cannot install it: " + INSTALL_HINT
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "--no-install-recommends", "postgresql"]
    result = subprocess.run(install, env=env, capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:  # a fresh machine may have no package lists yet
        subprocess.run(["apt-get", "update"], env=env, capture_output=True, timeout=timeout)
        result = subprocess.run(install, env=env, capture_output=True, text=True, timeout=timeout)
    bindir = _bindir()
    if bindir is None:
        raise RuntimeError(f"apt-get could not install postgresql: {result.stderr[-2000:]}")
    return bindir


class SystemPostgres:
    """One cluster: `start()` returns the SQLAlchemy URL Prefect takes; `destroy()` removes it."""

    def __init__(
        self,
        user: str = "prefect",
        password: str = "prefect-test-password",
        database: str = "prefect",
    ) -> None:
        self.bindir = ensure_installed()
        self.user, self.password, self.database = user, password, database
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="oas-system-pg-"))
        self.pgdata = self.root / "data"
        self.log_file = self.root / "postgres.log"
        # PostgreSQL refuses to run as root; the package creates the `postgres` user.
        self.os_user = pwd.getpwnam("postgres") if os.geteuid() == 0 else None

    @property
    def url(self) -> str:
        return (
            f"postgresql+asyncpg://{self.user}:{self.password}@127.0.0.1:{self.port}/"
            f"{self.database}"
        )

    def _run(
        self,
        *args: str,
        check: bool = True,
        env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        as_user: dict[str, object] = {}
        if self.os_user is not None:
            as_user = {
                "user": self.os_user.pw_uid,
                "group": self.os_user.pw_gid,
                "extra_groups": [],
            }
        return subprocess.run(
            list(args),
            check=check,
            capture_output=True,
            text=True,
            timeout=120,
            cwd=self.root,
            env={**os.environ, **(env or {})},
            **as_user,
        )  # type: ignore[call-overload]

    def start(self) -> str:
        self.root.chmod(0o755)
        pwfile = self.root / "pwfile"
        pwfile.write_text(self.password + "\n")
        if self.os_user is not None:
            os.chown(self.root, self.os_user.pw_uid, self.os_user.pw_gid)
            os.chown(pwfile, self.os_user.pw_uid, self.os_user.pw_gid)
        self._run(
            str(self.bindir / "initdb"),
            "-D",
            str(self.pgdata),
            "-U",
            self.user,
            f"--pwfile={pwfile}",
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "--encoding=UTF8",
            "--no-instructions",
        )
        pwfile.unlink()
        options = (
            f"-p {self.port} -h 127.0.0.1 -k {self.root} -c max_connections=200 "
            "-c fsync=off -c synchronous_commit=off"
        )
        result = self._run(
            str(self.bindir / "pg_ctl"),
            "-D",
            str(self.pgdata),
            "-w",
            "-t",
            "60",
            "-l",
            str(self.log_file),
            "-o",
            options,
            "start",
            check=False,
        )
        if result.returncode != 0:
            log = self.log_file
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise RuntimeError(f"PostgreSQL did not start: {result.stderr}\n{tail}")
        self._run(
            str(self.bindir / "createdb"),
            "-h",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-U",
            self.user,
            self.database,
            env={"PGPASSWORD": self.password},
        )
        return self.url

    def sql(self, query: str) -> str:
        """Run one query over TCP with the password, as Prefect connects; psql's -tA output."""
        result = self._run(
            str(self.bindir / "psql"),
            "-h",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-U",
            self.user,
            "-d",
            self.database,
            "-tAc",
            query,
            env={"PGPASSWORD": self.password},
        )
        return result.stdout.strip()

    def destroy(self) -> None:
        if (self.pgdata / "postmaster.pid").exists():
            self._run(
                str(self.bindir / "pg_ctl"),
                "-D",
                str(self.pgdata),
                "-w",
                "-t",
                "30",
                "-m",
                "fast",
                "stop",
                check=False,
            )
        shutil.rmtree(self.root, ignore_errors=True)
