"""Workspaces: what Anthropic calls a container, a directory that outlives one request.

Layout under the store's root (mode 0711 when oas runs as root, so the sandbox user can
reach its own workspace but list nobody's):

    <root>/<id>.json     metadata, written by oas only (created, last used)
    <root>/<id>/files/   the sandbox's /workspace
    <root>/<id>/tmp/     the sandbox's /tmp

Where the host allows it (see `disk`), `<root>/<id>` is the mount point of the workspace's
own file system, an image in `<root>/.disks/`, so the kernel holds its quota; the images
together may not pass the total (a workspace reserves its quota when it is made).

A workspace expires `ttl` seconds after its last use; expired ones are deleted by `sweep`,
which runs now and then as workspaces are opened (and can be called on a timer). Ids are
random (`container_` + 32 letters and digits) and checked against a strict pattern before
they touch the filesystem.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import shutil
import stat
import string
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import structlog

from src.sandbox import disk
from src.sandbox.disk import Disks

log = structlog.get_logger("oas.sandbox")

ID_PATTERN = re.compile(r"^container_[A-Za-z0-9]{16,64}$")
_ALPHABET = string.ascii_letters + string.digits
SWEEP_EVERY = 60.0
MB = 1024 * 1024


class NoRoom(Exception):
    """A new workspace's file system would take the workspaces past their total."""


def new_id() -> str:
    return "container_" + "".join(secrets.choice(_ALPHABET) for _ in range(32))


@dataclass(slots=True)
class Workspace:
    id: str
    path: Path
    created_at: float
    last_used_at: float
    ttl: float

    @property
    def files_dir(self) -> Path:
        return self.path / "files"

    @property
    def tmp_dir(self) -> Path:
        return self.path / "tmp"

    @property
    def expires_at(self) -> float:
        return self.last_used_at + self.ttl

    def container(self) -> dict[str, str]:
        """The response's top-level `container` field."""
        moment = datetime.fromtimestamp(self.expires_at, tz=UTC)
        return {"id": self.id, "expires_at": moment.isoformat().replace("+00:00", "Z")}


class WorkspaceStore:
    """Creates, finds, refreshes and deletes workspaces under one directory."""

    def __init__(self, root: Path, *, ttl: float, owner: tuple[int, int] | None) -> None:
        self.root = root
        self.ttl = ttl
        #: (uid, gid) to give workspace directories when oas runs as root
        self.owner = owner
        self._leases: dict[str, int] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._last_sweep = 0.0
        self.disks = Disks(root)
        #: new workspaces get their own file system of `quota` bytes (see `use_disks`)
        self.mounting = False
        self.quota = 0
        self.total = 0
        #: held while a workspace's file system is reserved or mounted
        self._mounts = threading.Lock()

    def use_disks(self, quota: int, total: int) -> None:
        """From now on each new workspace is its own file system of `quota` bytes, and
        their sizes together stay within `total`."""
        self.mounting, self.quota, self.total = True, quota, total

    # ---------------------------------------------------------------- lifecycle

    def ensure_root(self) -> None:
        """Create the root (once; an existing directory keeps its permissions)."""
        if not self.root.exists():
            self.root.mkdir(parents=True, exist_ok=True)
            os.chmod(self.root, 0o711 if self.owner else 0o700)
        st = os.lstat(self.root)
        if not stat.S_ISDIR(st.st_mode):
            raise OSError(f"{self.root} is not a directory")

    def create(self) -> Workspace:
        """A new workspace; `NoRoom` when its file system would not fit in the total."""
        self.ensure_root()
        self.maybe_sweep()
        now = time.time()
        workspace_id = new_id()
        workspace = Workspace(workspace_id, self.root / workspace_id, now, now, self.ttl)
        own = self.mounting
        with self._mounts:  # one reservation at a time
            if own:
                self._reserve()
            self._write_meta(workspace)
            workspace.path.mkdir(mode=0o700)
            if own:
                try:
                    self.disks.create(workspace_id, self.quota, workspace.path)
                    os.chmod(workspace.path, 0o700)
                except OSError as exc:  # out of loop devices, say: still a workspace
                    own = False
                    log.warning(
                        "workspace file system not made; the watchdog holds this one's quota",
                        container=workspace_id,
                        error=str(exc),
                    )
        for sub in (workspace.files_dir, workspace.tmp_dir):
            sub.mkdir(mode=0o755)
        if self.owner:
            for sub in (workspace.path, workspace.files_dir, workspace.tmp_dir):
                os.chown(sub, *self.owner, follow_symlinks=False)
        log.info("workspace created", container=workspace.id, own_file_system=own)
        return workspace

    def _reserve(self) -> None:
        """Room for one more image within the total, after sweeping expired ones if need be."""
        if self.disks.reserved() + self.quota > self.total:
            self.sweep()
        reserved = self.disks.reserved()
        if reserved + self.quota > self.total:
            log.warning(
                "workspace refused: the total is reserved (lower the workspace quota, raise "
                "the total or shorten the ttl)",
                reserved_mb=reserved // MB,
                total_mb=self.total // MB,
                quota_mb=self.quota // MB,
            )
            raise NoRoom(
                f"no room for a new workspace: the workspaces on this server have reserved "
                f"{reserved // MB} MB of their {self.total // MB} MB limit, and each takes "
                f"{self.quota // MB} MB; reuse a container (its id) or wait until one expires"
            )

    def get(self, workspace_id: str) -> Workspace | None:
        """The live workspace with this id; None when unknown, malformed or expired."""
        if not isinstance(workspace_id, str) or not ID_PATTERN.match(workspace_id):
            return None
        self.maybe_sweep()
        workspace = self._read_meta(workspace_id)
        if workspace is None:
            return None
        if workspace.expires_at <= time.time() and not self._leases.get(workspace_id):
            self.delete(workspace_id)
            return None
        if self.disks.has(workspace_id):
            try:
                with self._mounts:  # two requests for one container after a restart
                    self.disks.ensure_mounted(workspace_id, workspace.path)
            except (disk.DiskError, OSError) as exc:
                log.warning("workspace cannot be mounted", container=workspace_id, error=str(exc))
                return None
        try:
            st = os.lstat(workspace.files_dir)
        except OSError:
            return None
        if not stat.S_ISDIR(st.st_mode):
            return None
        return workspace

    def touch(self, workspace: Workspace) -> None:
        """Mark a use: the workspace now expires `ttl` from now."""
        workspace.last_used_at = time.time()
        self._write_meta(workspace)

    def delete(self, workspace_id: str) -> None:
        if not ID_PATTERN.match(workspace_id):
            return
        path = self.root / workspace_id
        self.disks.remove(workspace_id, path)
        if path.is_symlink():
            path.unlink()
        elif path.exists():
            if os.geteuid() != 0:
                _make_removable(path)
            shutil.rmtree(path)
        try:
            (self.root / f"{workspace_id}.json").unlink()
        except FileNotFoundError:
            pass
        log.info("workspace deleted", container=workspace_id)

    def sweep(self, now: float | None = None) -> int:
        """Delete expired workspaces nobody is using; returns how many went."""
        now = time.time() if now is None else now
        self._last_sweep = time.monotonic()
        removed = 0
        try:
            names = os.listdir(self.root)
        except FileNotFoundError:
            return 0
        ids = {n.removesuffix(".json") for n in names}
        for workspace_id in ids:
            if not ID_PATTERN.match(workspace_id) or self._leases.get(workspace_id):
                continue
            workspace = self._read_meta(workspace_id)
            if workspace is None or workspace.expires_at <= now:
                try:
                    self.delete(workspace_id)
                    removed += 1
                except OSError as exc:
                    log.warning("workspace cleanup failed", container=workspace_id, error=str(exc))
        return removed

    def recover(self) -> None:
        """At start: take over the file systems an earlier oas left mounted (killed, say),
        and remove those of workspaces that are gone, expired or never finished."""
        mounted = [p for p in disk.mounts_under(self.root) if p != self.root]
        swept = self.sweep()
        live = set(self.ids())
        orphans = 0
        kept = 0
        for point in mounted:
            if point.parent == self.root and point.name in live:
                kept += 1
            elif os.path.ismount(point):
                disk.unmount(point)  # a probe's, or a workspace whose metadata went
                orphans += 1
        try:
            images = [n for n in os.listdir(self.disks.area) if n.endswith(disk.IMAGE_SUFFIX)]
        except FileNotFoundError:
            images = []
        for name in images:
            if name.removesuffix(disk.IMAGE_SUFFIX) not in live:
                (self.disks.area / name).unlink(missing_ok=True)
                orphans += 1
        if mounted or swept or orphans:
            log.info(
                "workspace file systems from an earlier run",
                taken_over=kept,
                expired_removed=swept,
                orphans_removed=orphans,
            )

    def maybe_sweep(self) -> None:
        if time.monotonic() - self._last_sweep >= SWEEP_EVERY:
            self.sweep()

    def ids(self) -> list[str]:
        """Ids of the workspaces on disk (live or not yet swept)."""
        try:
            return [
                n.removesuffix(".json")
                for n in os.listdir(self.root)
                if n.endswith(".json") and ID_PATTERN.match(n.removesuffix(".json"))
            ]
        except FileNotFoundError:
            return []

    def at(self, workspace_id: str) -> Workspace:
        """A handle on a workspace's directories, for measuring (no metadata read)."""
        return Workspace(workspace_id, self.root / workspace_id, 0.0, 0.0, self.ttl)

    def count(self) -> int:
        try:
            return sum(1 for n in os.listdir(self.root) if n.endswith(".json"))
        except FileNotFoundError:
            return 0

    # ---------------------------------------------------------------- use

    @contextmanager
    def lease(self, workspace: Workspace) -> Iterator[None]:
        """Keep the sweeper away while a request uses the workspace."""
        self._leases[workspace.id] = self._leases.get(workspace.id, 0) + 1
        try:
            yield
        finally:
            left = self._leases[workspace.id] - 1
            if left:
                self._leases[workspace.id] = left
            else:
                del self._leases[workspace.id]
                self._locks.pop(workspace.id, None)

    def lock(self, workspace: Workspace) -> asyncio.Lock:
        """One operation at a time in a workspace (two requests may share one)."""
        return self._locks.setdefault(workspace.id, asyncio.Lock())

    def mounted(self, workspace: Workspace) -> bool:
        """The workspace is its own file system (the kernel holds its quota)."""
        return os.path.ismount(workspace.path)

    def usage_bytes(self, workspace: Workspace) -> int:
        """Disk blocks the workspace uses (links not followed, sparse files as stored)."""
        if self.mounted(workspace):
            return disk.usage(workspace.path)[0]
        total = 0
        stack = [str(workspace.files_dir), str(workspace.tmp_dir)]
        while stack:
            try:
                with os.scandir(stack.pop()) as it:
                    for entry in it:
                        try:
                            st = entry.stat(follow_symlinks=False)
                        except OSError:
                            continue
                        total += st.st_blocks * 512
                        if stat.S_ISDIR(st.st_mode):
                            stack.append(entry.path)
            except OSError:
                continue
        return total

    # ---------------------------------------------------------------- metadata

    def _write_meta(self, workspace: Workspace) -> None:
        meta = {
            "id": workspace.id,
            "created_at": workspace.created_at,
            "last_used_at": workspace.last_used_at,
        }
        target = self.root / f"{workspace.id}.json"
        temp = self.root / f".{workspace.id}.{secrets.token_hex(4)}.tmp"
        temp.write_text(json.dumps(meta))
        os.replace(temp, target)

    def _read_meta(self, workspace_id: str) -> Workspace | None:
        try:
            meta = json.loads((self.root / f"{workspace_id}.json").read_text())
            return Workspace(
                workspace_id,
                self.root / workspace_id,
                float(meta["created_at"]),
                float(meta["last_used_at"]),
                self.ttl,
            )
        except (OSError, ValueError, KeyError, TypeError):
            return None


def _make_removable(top: Path) -> None:
    """A command may leave directories without write or search permission for their owner.

    Only needed when oas is not root; the sandbox runs as this same user then, so a link
    swapped in mid-walk can only point at files the sandbox could change anyway.
    """
    stack = [str(top)]
    while stack:
        path = stack.pop()
        try:
            if not stat.S_ISDIR(os.lstat(path).st_mode):
                continue
            os.chmod(path, 0o700)
            with os.scandir(path) as it:
                stack.extend(e.path for e in it if e.is_dir(follow_symlinks=False))
        except OSError:
            continue
