"""The process-wide sandbox: workspaces, the isolation tier in force, and a slot limit.

One `SandboxService` per configuration (`service_for`), made on first use. Which tier is
in force is decided once, by probing (see `isolation.probe`), and logged, as is how the
disk quota is held (a file system per workspace, see `disk`, or the watchdog); `status()`
says what it is, for `/health/detailed` and `oas doctor`.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import threading
import time
from typing import TYPE_CHECKING, Any

import structlog

from src.sandbox import disk
from src.sandbox.config import TIERS, SandboxConfig
from src.sandbox.files import WorkspaceFiles
from src.sandbox.isolation import Isolation, candidates, probe
from src.sandbox.policy import CommandPolicy, parse_policy
from src.sandbox.runner import CommandResult, run_command
from src.sandbox.watchdog import DiskWatch
from src.sandbox.workspace import Workspace, WorkspaceStore, new_id

if TYPE_CHECKING:
    from src.core.settings import Settings

log = structlog.get_logger("oas.sandbox")

#: the largest file the text editor reads whole (to view or edit)
MAX_EDIT_BYTES = 10 * 1024 * 1024
QUEUE_SECONDS = 30.0  # how long a command waits for a free slot before too_many_requests
#: a workspace that is its own file system is full, after a command, with less than this
#: free (a writer's last write fails whole: ext4 refuses a write it cannot fit)
FULL_BELOW = 1024 * 1024
#: and the editor's file must fit with this to spare (the directory entry, metadata)
EDIT_SLACK = 64 * 1024
USAGE_FRESH = 30.0  # seconds a full measure of all workspaces is trusted
RLIMITS_NOT_CHOSEN = (
    "works here, but confines no file, unix socket or port of this host; "
    "set OAS_CODE_EXECUTION_ISOLATION=rlimits to accept that, or install "
    "bubblewrap or allow unprivileged user namespaces"
)


class Busy(Exception):
    """Every sandbox slot is taken."""


class SandboxService:
    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        owner = (config.run_uid, config.run_gid) if config.drops_privileges else None
        self.store = WorkspaceStore(config.workspace_dir, ttl=config.ttl, owner=owner)
        self.policy: CommandPolicy = parse_policy(config.allow, config.deny)
        self._isolation: Isolation | None = None
        self._probed = False
        self._skipped: dict[str, str] = {}
        self._probe_lock = threading.Lock()
        self._slots: asyncio.Semaphore | None = None
        #: disk use per workspace: measured in full before a command when older than
        #: USAGE_FRESH seconds, kept current by the watchdogs of running commands
        self._usage: dict[str, int] = {}
        self._usage_at = 0.0
        #: why workspaces are not file systems of their own here (None: they are)
        self.disk_fallback: str | None = "not probed yet"

    # ---------------------------------------------------------------- isolation

    def isolation(self) -> Isolation | None:
        """The strongest tier that works here (probed once); None if none does."""
        with self._probe_lock:
            if not self._probed:
                self._isolation = self._choose()
                self._probed = True
        return self._isolation

    def _choose(self) -> Isolation | None:
        try:
            self.store.ensure_root()
        except OSError as exc:
            self._skipped["workspace"] = f"cannot create {self.config.workspace_dir}: {exc}"
            log.error("code execution unavailable", reason=self._skipped["workspace"])
            return None
        self._choose_disks()
        tiers = candidates(self.config)
        wanted = TIERS if self.config.isolation == "auto" else (self.config.isolation,)
        for name in wanted:  # a stronger tier the host lacks is said, not silently passed
            if name not in {t.tier for t in tiers}:
                self._skipped[name] = "not installed on this host" + (
                    " (apt-get install bubblewrap)" if name == "bubblewrap" else ""
                )
        for tier in tiers:
            workspace = self._probe_workspace()
            try:
                error = probe(tier, workspace)
            finally:
                shutil.rmtree(workspace.path, ignore_errors=True)
            if error is None and tier.tier == "rlimits" and self.config.isolation == "auto":
                self._skipped["rlimits"] = RLIMITS_NOT_CHOSEN
                break
            if error is None:
                unprotected = tier.unprotected()
                log_fn = log.warning if unprotected else log.info
                log_fn(
                    "code execution isolation",
                    tier=tier.tier,
                    skipped=self._skipped or None,
                    does_not_protect=unprotected or None,
                    **{k: v for k, v in self.describe(tier).items() if k != "tier"},
                )
                return tier
            self._skipped.setdefault(tier.tier, error)
        log.error("code execution unavailable: no isolation tier works", skipped=self._skipped)
        return None

    def _choose_disks(self) -> None:
        """A file system per workspace where this host can mount one; else the watchdog."""
        if self.config.disk_quota == "watchdog":
            self.disk_fallback = "OAS_CODE_EXECUTION_DISK_QUOTA=watchdog"
        else:
            self.disk_fallback = disk.unavailable(self.store.disks.area)
        if self.disk_fallback is None:
            self.store.use_disks(self.config.workspace_bytes, self.config.total_disk_bytes)
            st = os.statvfs(self.store.disks.area)
            free = st.f_bavail * st.f_frsize + self.store.disks.written()
            if free < self.config.total_disk_bytes:  # sparse images: the host fills first
                log.warning(
                    "the workspaces' total is more than the disk has free",
                    total_mb=self.config.total_disk_bytes // disk.MB,
                    free_mb=free // disk.MB,
                    fix="lower OAS_CODE_EXECUTION_TOTAL_DISK_MB",
                )
        try:
            self.store.recover()
        except OSError as exc:
            log.warning("workspace file systems of an earlier run not cleaned", error=str(exc))

    def describe(self, isolation: Isolation) -> dict[str, object]:
        """The tier's description, with how the disk quota is held on this host."""
        described = isolation.describe()
        confined = isolation.tier != "rlimits"
        if self.disk_fallback is None:
            described["disk_quota"] = (
                "held by the kernel: each workspace is an ext4 file system of its quota's "
                "size (a loop-mounted image); the total by reservation: a new workspace is "
                "refused when the images together would pass it"
            )
            if confined:
                described["mountinfo"] = (
                    "shows a loop device and the workspace's own paths (/files, /tmp), "
                    "not its host path"
                )
        else:
            described["disk_quota"] = (
                f"{described['disk_quota']} (no file system per workspace: {self.disk_fallback})"
            )
        return described

    def _probe_workspace(self) -> Workspace:
        """A throwaway workspace next to the real ones (same reachability)."""
        name = ".probe-" + new_id().removeprefix("container_")[:12]
        path = self.config.workspace_dir / name
        path.mkdir(mode=0o700)
        for part in ("files", "tmp"):
            (path / part).mkdir(mode=0o755)
        if self.config.drops_privileges:
            for owned in (path, path / "files", path / "tmp"):
                os.chown(owned, self.config.run_uid, self.config.run_gid)
        return Workspace(name, path, 0.0, 0.0, 0.0)

    # ---------------------------------------------------------------- use

    def files(self, workspace: Workspace) -> WorkspaceFiles:
        isolation = self.isolation()
        assert isolation is not None
        chown = (self.config.run_uid, self.config.run_gid) if self.config.drops_privileges else None
        return WorkspaceFiles(
            isolation.path_map(workspace),
            quota_bytes=self.config.workspace_bytes,
            run_uid=self.config.run_uid,
            chown_to=chown,
            max_output_bytes=self.config.limits.max_output_bytes,
            max_edit_bytes=MAX_EDIT_BYTES,
            max_file_bytes=self.config.limits.max_file_bytes,
        )

    async def run(
        self, workspace: Workspace, argv: list[str], *, stdin: bytes | None = None
    ) -> CommandResult:
        """Run argv in the workspace's sandbox; `Busy` when no slot frees up in time."""
        isolation = self.isolation()
        assert isolation is not None
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.config.max_concurrent)
        try:
            await asyncio.wait_for(self._slots.acquire(), QUEUE_SECONDS)
        except TimeoutError:
            raise Busy from None
        try:
            # a workspace that is its own file system needs no watching: the kernel holds it
            watch = None
            if not self.store.mounted(workspace):
                watch = await asyncio.to_thread(self.disk_watch, workspace)
            try:
                return await run_command(
                    isolation, workspace, argv, self.config.limits, stdin=stdin, disk=watch
                )
            finally:  # what it left behind counts in the total of the next command
                if watch is not None:
                    await asyncio.to_thread(watch.usage)
        finally:
            self._slots.release()

    def disk_watch(self, workspace: Workspace) -> DiskWatch:
        """The workspace's quota and the total cap, as they stand before a command."""
        now = time.monotonic()
        if now - self._usage_at > USAGE_FRESH:
            self._usage = {w: self.store.usage_bytes(self.store.at(w)) for w in self.store.ids()}
            self._usage_at = now

        def usage() -> int:
            used = self.store.usage_bytes(workspace)
            self._usage[workspace.id] = used
            return used

        def total(used: int) -> int:
            return sum(list(self._usage.values())) - self._usage.get(workspace.id, 0) + used

        start = usage()
        return DiskWatch(
            usage,
            self.config.workspace_bytes,
            total,
            self.config.total_disk_bytes,
            start_usage=start,
            start_total=total(start),
        )

    def total_usage(self) -> int:
        """Disk use of all workspaces, as last measured."""
        return sum(list(self._usage.values()))

    def quota_problem(self, workspace: Workspace, adding: int = 0) -> str | None:
        """Why `adding` more bytes would not fit (the workspace's quota, the total), or None.

        For a workspace that is its own file system: when what is free is less than
        `adding` (the editor's file) or, after a command, less than a writer's last write.
        """
        if self.store.mounted(workspace):
            used, free = disk.usage(workspace.path)
            self._usage[workspace.id] = used
            if free < (adding + EDIT_SLACK if adding else FULL_BELOW):
                return disk.workspace_full(self.config.workspace_bytes)
            return None
        used = self.store.usage_bytes(workspace)
        self._usage[workspace.id] = used
        mb = 1024 * 1024
        if used + adding > self.config.workspace_bytes:
            return disk.workspace_full(self.config.workspace_bytes)
        if self.total_usage() + adding > self.config.total_disk_bytes:
            return (
                f"the workspaces on this server together are at their "
                f"{self.config.total_disk_bytes // mb} MB limit: delete files before "
                "writing more"
            )
        return None

    # ---------------------------------------------------------------- report

    def status(self) -> dict[str, Any]:
        isolation = self.isolation()
        limits = self.config.limits
        return {
            "enabled": True,
            "available": isolation is not None,
            "isolation": self.describe(isolation) if isolation else None,
            "requested": self.config.isolation,
            "skipped": dict(self._skipped),
            "does_not_protect": isolation.unprotected() if isolation else None,
            "limits": {
                "timeout_seconds": limits.timeout,
                "max_output_bytes": limits.max_output_bytes,
                "memory_bytes": limits.memory_bytes,
                "max_processes": limits.max_processes,
                "max_file_bytes": limits.max_file_bytes,
                "workspace_bytes": self.config.workspace_bytes,
                "total_disk_bytes": self.config.total_disk_bytes,
                "max_concurrent": self.config.max_concurrent,
            },
            "network": self.config.network,
            "policy": {"allow": list(self.policy.allow), "deny": list(self.policy.deny)},
            "workspaces": {
                "dir": str(self.config.workspace_dir),
                "count": self.store.count(),
                "ttl_seconds": self.config.ttl,
                "disk_bytes_measured": self.total_usage(),
                "own_file_systems": self.store.mounting,
                "disk_bytes_reserved": self.store.disks.reserved() if self.store.mounting else None,
            },
        }

    def close(self) -> None:
        """At shutdown: unmount the workspaces' file systems (their images stay, and mount
        again when a container is used after a restart)."""
        count = self.store.disks.unmount_all()
        if count:
            log.info("workspace file systems unmounted", count=count)


_services: dict[SandboxConfig, SandboxService] = {}
_services_lock = threading.Lock()


def service_for(config: SandboxConfig) -> SandboxService:
    with _services_lock:
        service = _services.get(config)
        if service is None:
            service = _services[config] = SandboxService(config)
        return service


def close_services() -> None:
    """Unmount what every sandbox service mounted (at shutdown)."""
    with _services_lock:
        services = list(_services.values())
    for service in services:
        try:
            service.close()
        except OSError as exc:
            log.warning("workspace file systems not unmounted", error=str(exc))


def sandbox_status(settings: Settings) -> dict[str, Any]:
    """What `/health/detailed` shows under `code_execution` (probes on first call)."""
    if not settings.code_execution:
        return {"enabled": False}
    return service_for(SandboxConfig.from_settings(settings)).status()
