"""How a command is confined: three tiers, strongest first, and which one this host has.

- `bubblewrap`: `bwrap` builds the sandbox (user, pid, net, ipc, uts namespaces; a root
  made of read-only host paths, a private /dev and /proc, the workspace and its /tmp).
- `namespaces`: the same shape built by `launcher.py` with the kernel's unprivileged user
  namespaces, for hosts without bubblewrap.
- `rlimits`: resource limits, a clean environment and the workspace as working directory;
  no filesystem or network confinement. The floor, reported loudly.

All tiers: limits on CPU time, address space, file size, open files and process count, no
core dumps, `no_new_privs`, the environment built from nothing (no variable of oas reaches
a command), and, when oas runs as root, a switch to an unprivileged uid first (root's
process count cannot be limited). `probe` runs `echo ok` through a tier for real: a tier
is in force only if that works on this host, with this workspace directory.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from src.sandbox import seccomp
from src.sandbox.config import Limits, SandboxConfig, Tier
from src.sandbox.hidden import SYSTEM_HIDDEN, Cover, cover
from src.sandbox.launcher import count_processes
from src.sandbox.paths import PathMap
from src.sandbox.workspace import Workspace

LAUNCHER = str(Path(__file__).with_name("launcher.py"))
SANDBOX_WORKDIR = "/workspace"
INNER_ID = 1000
SHM_BYTES = 64 * 1024 * 1024  # /dev/shm is memory: a small one, outside the memory watch
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def clean_env(home: str, tmpdir: str) -> dict[str, str]:
    """The whole environment of a command: built here, nothing inherited."""
    return {
        "PATH": PATH,
        "HOME": home,
        "TMPDIR": tmpdir,
        "PWD": home,
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "TERM": "dumb",
        "SHELL": "/bin/bash",
        "USER": "sandbox",
        "LOGNAME": "sandbox",
        "PYTHONUNBUFFERED": "1",
    }


def nproc_per_namespace() -> bool:
    """Linux >= 5.14 counts RLIMIT_NPROC per user namespace, so a limit of N means N."""
    try:
        major, minor = (int(x) for x in os.uname().release.split(".")[:2])
    except ValueError:
        return False
    return (major, minor) >= (5, 14)


@dataclass(slots=True)
class Spawn:
    """How to start one sandboxed command: what `runner` hands to the kernel."""

    argv: list[str]
    env: dict[str, str]
    pass_fds: tuple[int, ...] = ()
    user: int | None = None
    group: int | None = None
    #: the child writes setup failures here; the parent reads `status_read` after exit
    status_read: int | None = None
    #: descriptors the parent closes once the child has started
    close_after_start: list[int] = field(default_factory=list)
    #: the status descriptor carries "started" from inside the sandbox (bubblewrap), rather
    #: than setup errors (the launcher)
    started_marker: bool = False

    def setup_error(self, status: bytes, stderr: str) -> str | None:
        """Why the sandbox did not start, or None when the command ran."""
        if self.started_marker:
            if status.startswith(b"started"):
                return None
            return stderr.strip() or "bubblewrap failed to start"
        return status.decode(errors="replace") or None


class Isolation:
    """One tier's way of wrapping a command. Subclasses say how."""

    tier: Tier

    def __init__(self, config: SandboxConfig) -> None:
        self.config = config

    def path_map(self, workspace: Workspace) -> PathMap:
        return PathMap(
            {SANDBOX_WORKDIR: workspace.files_dir, "/tmp": workspace.tmp_dir}, SANDBOX_WORKDIR
        )

    def workdir(self, workspace: Workspace) -> str:
        return SANDBOX_WORKDIR

    def spawn(
        self, workspace: Workspace, argv: list[str], *, max_file_bytes: int | None = None
    ) -> Spawn:
        """`max_file_bytes`: RLIMIT_FSIZE for this command (what is left of the quota)."""
        raise NotImplementedError

    def cover(self) -> Cover:
        """The host paths to hide inside the shown ones, as of now (sockets come and go)."""
        return cover(
            _readonly(self.config.readonly_paths), (*SYSTEM_HIDDEN, *self.config.hidden_paths)
        )

    def nproc(self) -> int:
        limit = self.config.limits.max_processes
        if self.tier == "rlimits" or not nproc_per_namespace():
            return limit + count_processes(self.config.run_uid)
        return limit

    def describe(self) -> dict[str, object]:
        """What this tier confines, for the start's log line, /health/detailed, `oas doctor`
        and docs/14 (whose table tests/test_sandbox_attacks.py measures)."""
        confined = self.tier != "rlimits"
        network = self.config.network
        filtered = seccomp.program() is not None
        return {
            "tier": self.tier,
            "filesystem": "workspace, /tmp and read-only system paths only"
            if confined
            else "not confined: commands see every file the sandbox uid can read",
            "network": (
                "allowed: the host's network, loopback ports (oas, Prefect) included"
                if network
                else "none (own network namespace)"
            )
            if confined
            else "not confined (no namespace available)",
            "sockets": (
                "host unix sockets hidden (data dir, /tmp, /run covered; sockets in "
                "shown paths masked)"
                + ("; abstract ones reachable (network on)" if network else "")
            )
            if confined
            else "not confined: any unix socket the sandbox uid may open",
            "processes": "own pid namespace"
            if confined
            else "shares the host's; background processes may outlive a command",
            "disk_quota": "held during a command: watchdog every 0.1 s, each file limited to "
            "what is left" + ("; fallocate refused" if filtered else ""),
            "memory_total": "held: a watchdog ends the command when its processes together "
            "pass the limit" + ("" if confined else " (a process that leaves the tree escapes it)"),
            "pids": f"RLIMIT_NPROC {self.config.limits.max_processes}"
            + (" per namespace" if confined and nproc_per_namespace() else " counted over the uid"),
            "nested_user_namespaces": "refused (seccomp)" if filtered else "allowed",
            "mountinfo": "shows the workspace's host path" if confined else "the host's",
            "runs_as_uid": self.config.run_uid,
        }

    def unprotected(self) -> list[str]:
        """What this tier does not protect, said at start when it is the one in force."""
        if self.tier != "rlimits":
            return ["loopback ports of the host (network is on)"] if self.config.network else []
        return [
            (
                "files: every file the sandbox uid can read (the data dir when oas does not "
                "run as root)"
            ),
            "unix sockets of the host (PostgreSQL, Docker, ...)",
            "network: loopback ports (oas, Prefect) and the internet",
            "processes: other processes of the sandbox uid",
            "disk and memory outside the workspace: the host's /tmp, /var/tmp, /dev/shm",
        ]


class _Launched(Isolation):
    """The tiers `launcher.py` builds: configuration through a memfd, status through a pipe."""

    mode: str

    def _config(
        self,
        workspace: Workspace,
        argv: list[str],
        env: dict[str, str],
        workspace_fd: int,
        status_fd: int,
        max_file_bytes: int | None,
    ) -> dict[str, object]:
        limits = self.config.limits
        drop = self.config.drops_privileges
        filter_bytes = seccomp.program()
        hide = self.cover() if self.tier == "namespaces" else Cover((), ())
        return {
            "mode": self.mode,
            "argv": argv,
            "env": env,
            "workspace_fd": workspace_fd,
            "status_fd": status_fd,
            "drop_uid": self.config.sandbox_uid if drop else None,
            "drop_gid": self.config.sandbox_uid if drop else None,
            "limits": {
                "cpu": limits.cpu_seconds,
                "as": limits.memory_bytes,
                "fsize": max_file_bytes or limits.max_file_bytes,
                "nofile": limits.max_open_files,
                "nproc": limits.max_processes,
            },
            "nproc_relative": not nproc_per_namespace(),
            "readonly": list(_readonly(self.config.readonly_paths)),
            "hide_dirs": list(hide.dirs),
            "hide_files": list(hide.files),
            "seccomp": filter_bytes.hex() if filter_bytes is not None else None,
            "network": self.config.network,
            "workdir": SANDBOX_WORKDIR,
        }

    def _env(self, workspace: Workspace) -> dict[str, str]:
        return clean_env(SANDBOX_WORKDIR, "/tmp")

    def spawn(
        self, workspace: Workspace, argv: list[str], *, max_file_bytes: int | None = None
    ) -> Spawn:
        workspace_fd = os.open(workspace.path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        status_read, status_write = os.pipe()
        env = self._env(workspace)
        config = self._config(workspace, argv, env, workspace_fd, status_write, max_file_bytes)
        config_fd = os.memfd_create("oas-sandbox", 0)
        os.write(config_fd, json.dumps(config).encode())
        os.lseek(config_fd, 0, os.SEEK_SET)
        return Spawn(
            [sys.executable, "-I", "-S", LAUNCHER, str(config_fd)],
            env,
            pass_fds=(config_fd, workspace_fd, status_write),
            status_read=status_read,
            close_after_start=[config_fd, workspace_fd, status_write],
        )


class Namespaces(_Launched):
    tier: Tier = "namespaces"
    mode = "namespaces"


class Rlimits(_Launched):
    tier: Tier = "rlimits"
    mode = "rlimits"

    def path_map(self, workspace: Workspace) -> PathMap:
        files = str(workspace.files_dir)
        return PathMap({files: workspace.files_dir}, files)

    def workdir(self, workspace: Workspace) -> str:
        return str(workspace.files_dir)

    def _env(self, workspace: Workspace) -> dict[str, str]:
        return clean_env(str(workspace.files_dir), str(workspace.tmp_dir))


def candidates(config: SandboxConfig) -> list[Isolation]:
    """The tiers to try, strongest first (only the chosen one when not `auto`)."""
    tiers: list[Isolation] = []
    bwrap = shutil.which("bwrap")
    if bwrap:
        from src.sandbox.bubblewrap import Bubblewrap

        tiers += [Bubblewrap(config, bwrap), Bubblewrap(config, bwrap, disable_userns=False)]
    tiers += [Namespaces(config), Rlimits(config)]
    if config.isolation != "auto":
        tiers = [t for t in tiers if t.tier == config.isolation]
    return tiers


def probe(isolation: Isolation, workspace: Workspace) -> str | None:
    """Run `echo ok` through the tier; None when it works, else why not."""
    spawn = isolation.spawn(workspace, ["/bin/bash", "-c", "echo ok"])
    try:
        proc = subprocess.run(
            spawn.argv,
            env=spawn.env,
            pass_fds=spawn.pass_fds,
            user=spawn.user,
            group=spawn.group,
            extra_groups=[] if spawn.user is not None else None,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=20,
            start_new_session=True,
            check=False,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return f"{type(exc).__name__}: {exc}"
    finally:
        for fd in spawn.close_after_start:
            os.close(fd)
    status = b""
    if spawn.status_read is not None:
        os.set_blocking(spawn.status_read, False)
        try:
            status = os.read(spawn.status_read, 65536)
        except BlockingIOError:
            pass
        os.close(spawn.status_read)
    stderr = proc.stderr.decode(errors="replace")
    error = spawn.setup_error(status, stderr)
    if error:
        return error.strip()
    if proc.returncode != 0 or proc.stdout != b"ok\n":
        return f"exit {proc.returncode}: {stderr.strip()[:300]}"
    return None


@functools.cache
def _readonly(paths: tuple[str, ...] | list[str]) -> list[str]:
    """Existing absolute paths, without ones already inside another."""
    out: list[str] = []
    for path in sorted({os.path.normpath(p) for p in paths if p.startswith("/")}):
        if path == "/" or any(path.startswith(p + "/") for p in out):
            continue
        if os.path.lexists(path):
            out.append(path)
    return out


def _ulimit_prologue(
    limits: Limits, nproc: int, started_fd: int, file_bytes: int | None = None
) -> str:
    """bash, inside bubblewrap's namespaces: say the sandbox is up (on a descriptor closed
    before the command runs), set the limits, run the command."""
    kib = 1024
    return " && ".join(
        [
            f"printf started >&{started_fd}",
            f"exec {started_fd}>&-",
            "ulimit -c 0",
            f"ulimit -t {limits.cpu_seconds}",
            f"ulimit -v {limits.memory_bytes // kib}",
            f"ulimit -f {(file_bytes or limits.max_file_bytes) // kib}",
            f"ulimit -n {limits.max_open_files}",
            f"ulimit -u {nproc}",
            'exec "$@"',
        ]
    )
