"""What a sandbox is allowed: limits, isolation choice, paths. Built once from `Settings`.

Frozen and hashable, so one `SandboxConfig` names one process-wide sandbox service.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from src.core.settings import Settings

Tier = Literal["bubblewrap", "namespaces", "rlimits"]
IsolationChoice = Literal["auto", "bubblewrap", "namespaces", "rlimits"]
DiskQuotaChoice = Literal["auto", "watchdog"]

#: strongest first: what `auto` tries, in order
TIERS: tuple[Tier, ...] = ("bubblewrap", "namespaces", "rlimits")


@dataclass(frozen=True, slots=True)
class Limits:
    """Per-command limits. Memory and file sizes in bytes."""

    timeout: float = 60.0
    max_output_bytes: int = 100_000
    memory_bytes: int = 2048 * 1024 * 1024
    max_processes: int = 64
    max_file_bytes: int = 100 * 1024 * 1024
    max_open_files: int = 256

    @property
    def cpu_seconds(self) -> int:
        """CPU time per process: the wall limit, rounded up, plus a second of slack."""
        return int(self.timeout) + 2


@dataclass(frozen=True, slots=True)
class SandboxConfig:
    """Everything the sandbox needs to know; nothing secret is in here."""

    workspace_dir: Path
    isolation: IsolationChoice = "auto"
    limits: Limits = field(default_factory=Limits)
    network: bool = False
    ttl: float = 3600.0
    workspace_bytes: int = 1024 * 1024 * 1024
    #: all workspaces together
    total_disk_bytes: int = 10 * 1024 * 1024 * 1024
    #: auto: a file system per workspace where the host allows mounting; else the watchdog
    disk_quota: DiskQuotaChoice = "auto"
    max_concurrent: int = 4
    allow: tuple[str, ...] = ()
    deny: tuple[str, ...] = ()
    readonly_paths: tuple[str, ...] = ("/usr", "/bin", "/sbin", "/lib", "/lib64", "/etc")
    #: host paths covered with an empty tmpfs where they fall inside `readonly_paths`
    #: (the data directory, Prefect's home: sockets and files of oas; see `hidden`)
    hidden_paths: tuple[str, ...] = ()
    #: uid/gid commands run as when oas itself runs as root (root cannot be rlimited)
    sandbox_uid: int = 65534

    @classmethod
    def from_settings(cls, settings: Settings) -> SandboxConfig:
        mb = 1024 * 1024
        return cls(
            workspace_dir=Path(settings.workspace_dir).expanduser(),
            isolation=settings.code_execution_isolation,
            limits=Limits(
                timeout=settings.code_execution_timeout,
                max_output_bytes=settings.code_execution_max_output_bytes,
                memory_bytes=settings.code_execution_memory_mb * mb,
                max_processes=settings.code_execution_max_processes,
                max_file_bytes=settings.code_execution_max_file_mb * mb,
            ),
            network=settings.code_execution_network,
            ttl=settings.code_execution_ttl,
            workspace_bytes=settings.code_execution_workspace_mb * mb,
            total_disk_bytes=settings.code_execution_total_disk_mb * mb,
            disk_quota=settings.code_execution_disk_quota,
            max_concurrent=settings.code_execution_max_concurrent,
            allow=tuple(settings.code_execution_allow),
            deny=tuple(settings.code_execution_deny),
            readonly_paths=tuple(settings.code_execution_readonly_paths),
            hidden_paths=_hidden_paths(settings),
            sandbox_uid=settings.code_execution_uid,
        )

    @property
    def drops_privileges(self) -> bool:
        """Running as root: commands switch to `sandbox_uid` first."""
        return os.geteuid() == 0

    @property
    def run_uid(self) -> int:
        """The host uid that owns workspace files and runs commands."""
        return self.sandbox_uid if self.drops_privileges else os.geteuid()

    @property
    def run_gid(self) -> int:
        return self.sandbox_uid if self.drops_privileges else os.getegid()


def _hidden_paths(settings: Settings) -> tuple[str, ...]:
    """Where oas keeps what a command must not reach, whatever paths the sandbox is shown."""
    paths = [settings.data_dir, settings.workspace_dir, settings.payload_store_dir]
    if settings.log_file is not None:
        paths.append(settings.log_file.parent)
    prefect_home = os.environ.get("PREFECT_HOME")
    paths.append(Path(prefect_home) if prefect_home else Path.home() / ".prefect")
    return tuple(str(Path(p).expanduser().absolute()) for p in paths)
