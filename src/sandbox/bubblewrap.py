"""The bubblewrap tier: the strongest isolation `oas` runs commands in.

A fresh mount, PID, IPC, UTS and (unless code execution has network) network namespace;
the host's file system read-only with what must stay hidden covered, the workspace the
only writable place, and a new /proc. See `isolation.py` for the other tiers.
"""

from __future__ import annotations

import os
import subprocess

from src.sandbox import seccomp
from src.sandbox.config import SandboxConfig, Tier
from src.sandbox.isolation import (
    INNER_ID,
    PATH,
    SANDBOX_WORKDIR,
    SHM_BYTES,
    Isolation,
    Spawn,
    _readonly,
    _ulimit_prologue,
    clean_env,
)
from src.sandbox.workspace import Workspace


class Bubblewrap(Isolation):
    tier: Tier = "bubblewrap"

    def __init__(self, config: SandboxConfig, bwrap: str, *, disable_userns: bool = True) -> None:
        super().__init__(config)
        self.bwrap = bwrap
        self.disable_userns = disable_userns
        self.sized = _bwrap_has(bwrap, "--size")

    def _size(self, size: int) -> list[str]:
        """`--size` for the next tmpfs (bubblewrap 0.7 and later; older ones size nothing)."""
        return ["--size", str(size)] if self.sized else []

    def spawn(
        self, workspace: Workspace, argv: list[str], *, max_file_bytes: int | None = None
    ) -> Spawn:
        env = clean_env(SANDBOX_WORKDIR, "/tmp")
        status_read, status_write = os.pipe()
        pass_fds = [status_write]
        cmd = [
            self.bwrap,
            "--unshare-all",
            "--unshare-user",
            "--die-with-parent",
            "--new-session",
            "--uid",
            str(INNER_ID),
            "--gid",
            str(INNER_ID),
            "--hostname",
            "sandbox",
        ]
        if self.config.network:
            cmd.append("--share-net")
        if self.disable_userns:
            cmd.append("--disable-userns")
        for path in _readonly(self.config.readonly_paths):
            if os.path.islink(path):
                cmd += ["--symlink", os.readlink(path), path]
            else:
                cmd += ["--ro-bind", path, path]
        hide = self.cover()
        for path in hide.dirs:
            cmd += [*self._size(1024 * 1024), "--tmpfs", path]
        for path in hide.files:
            cmd += ["--ro-bind", "/dev/null", path]
        filter_bytes = seccomp.program()
        if filter_bytes is not None:
            filter_fd = os.memfd_create("oas-seccomp", 0)
            os.write(filter_fd, filter_bytes)
            os.lseek(filter_fd, 0, os.SEEK_SET)
            pass_fds.append(filter_fd)
            cmd += ["--seccomp", str(filter_fd)]
        cmd += [
            "--dev",
            "/dev",
            *self._size(SHM_BYTES),
            "--tmpfs",
            "/dev/shm",
            "--proc",
            "/proc",
            "--bind",
            str(workspace.files_dir),
            SANDBOX_WORKDIR,
            "--bind",
            str(workspace.tmp_dir),
            "/tmp",
            "--remount-ro",
            "/",
            "--chdir",
            SANDBOX_WORKDIR,
            "--clearenv",
        ]
        for key, value in env.items():
            cmd += ["--setenv", key, value]
        prologue = _ulimit_prologue(
            self.config.limits, self.nproc(), started_fd=status_write, file_bytes=max_file_bytes
        )
        cmd += ["--", "/bin/bash", "-c", prologue, "sandbox", *argv]
        drop = self.config.drops_privileges
        return Spawn(
            cmd,
            {"PATH": PATH},
            pass_fds=tuple(pass_fds),
            user=self.config.sandbox_uid if drop else None,
            group=self.config.sandbox_uid if drop else None,
            status_read=status_read,
            close_after_start=pass_fds,
            started_marker=True,
        )


def _bwrap_has(bwrap: str, option: str) -> bool:
    try:
        usage = subprocess.run(
            [bwrap, "--help"], capture_output=True, text=True, timeout=10, check=False
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return False
    return option in usage
