"""The process-wide sandbox: workspaces, the isolation tier in force, and a slot limit.

One `SandboxService` per configuration (`service_for`), made on first use. Which tier is
in force is decided once, by probing (see `isolation.probe`), and logged; `status()` says
what it is, for `/health/detailed`.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import threading
import time
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import structlog

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
                    **{k: v for k, v in tier.describe().items() if k != "tier"},
                )
                return tier
            self._skipped.setdefault(tier.tier, error)
        log.error("code execution unavailable: no isolation tier works", skipped=self._skipped)
        return None

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
            disk = await asyncio.to_thread(self.disk_watch, workspace)
            try:
                return await run_command(
                    isolation, workspace, argv, self.config.limits, stdin=stdin, disk=disk
                )
            finally:  # what it left behind counts in the total of the next command
                await asyncio.to_thread(disk.usage)
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
        """Why `adding` more bytes would not fit (the workspace's quota, the total), or None."""
        used = self.store.usage_bytes(workspace)
        self._usage[workspace.id] = used
        mb = 1024 * 1024
        if used + adding > self.config.workspace_bytes:
            return (
                f"the workspace is over its {self.config.workspace_bytes // mb} MB quota: "
                "delete files before writing more"
            )
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
            "isolation": isolation.describe() if isolation else None,
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
            },
        }


@lru_cache(maxsize=8)
def service_for(config: SandboxConfig) -> SandboxService:
    return SandboxService(config)


def sandbox_status(settings: Settings) -> dict[str, Any]:
    """What `/health/detailed` shows under `code_execution` (probes on first call)."""
    if not settings.code_execution:
        return {"enabled": False}
    return service_for(SandboxConfig.from_settings(settings)).status()
