"""Workspace file systems: each workspace is its own ext4 file system, of its quota's size.

A watchdog that measures a workspace every 0.1 s lets parallel writers through: eight
processes of one command each writing what is left took a 20 MB workspace to 29-73 MB.
A file system cannot hold more than its size, so where the host allows mounting (oas runs
as root with CAP_SYS_ADMIN, a loop device and `mkfs.ext4`) each workspace is a sparse
image file under `<workspaces>/.disks/`, loop-mounted on the workspace's directory: the
kernel answers `ENOSPC` at the quota, however many processes write at once.

The total over all workspaces is held by reservation: a workspace reserves its image's
size when it is made, and a new one is refused when the images together would pass the
total. Sparse images take only what is written, but they can all fill up at once, so the
sum of their sizes is the honest bound. (Nesting sparse images inside one file system of
the total's size would let more workspaces exist, but a full outer file system turns an
inner write into an I/O error on the loop device, not `ENOSPC`: data lost at writeback,
the workspace's file system remounted read-only.)

Images have no journal (they are scratch space; mkfs is then ~10 ms and an empty 1 GB
image takes under 1 MB of disk) and no blocks reserved for root (oas writes as root).
Where mounting is not possible, `unavailable` says why and the watchdog holds the quota.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import structlog

log = structlog.get_logger("oas.sandbox")

MB = 1024 * 1024
IMAGE_SUFFIX = ".img"
#: one inode per 8 KB (a node_modules' small files); its tables, never zeroed, stay sparse
MKFS_OPTIONS = (
    "-q", "-F", "-O", "^has_journal", "-m", "0", "-i", "8192", "-E", "lazy_itable_init=1"
)  # fmt: skip
#: noinit_itable: the inode tables are not zeroed in the background (the image stays sparse)
MOUNT_OPTIONS = "loop,nosuid,nodev,noatime,noinit_itable"
_TOOLS_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_PROBE_BYTES = 4 * MB


class DiskError(OSError):
    """A workspace's file system could not be made or mounted."""


def workspace_full(quota_bytes: int) -> str:
    """What the model reads when its workspace has no room left (command or editor)."""
    return f"the workspace is at its {quota_bytes // MB} MB quota: delete files before writing more"


def _tool(name: str) -> str | None:
    for directory in _TOOLS_PATH.split(":"):
        candidate = f"{directory}/{name}"
        if os.access(candidate, os.X_OK):
            return candidate
    return None


def _run(argv: list[str]) -> None:
    try:
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=60, check=False, env={"PATH": _TOOLS_PATH}
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise DiskError(f"{argv[0]}: {exc}") from None
    if done.returncode != 0:
        detail = (done.stderr or done.stdout).strip().splitlines()
        raise DiskError(f"{os.path.basename(argv[0])}: {detail[-1] if detail else 'failed'}")


def mounts_under(top: Path) -> list[Path]:
    """Mount points at or below `top`, deepest first (from /proc/self/mountinfo)."""
    prefix = str(top.absolute()).rstrip("/")
    found: list[Path] = []
    try:
        with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as source:
            for line in source:
                fields = line.split(" ")
                if len(fields) < 5:
                    continue
                point = _unescape(fields[4])
                if point == prefix or point.startswith(prefix + "/"):
                    found.append(Path(point))
    except OSError:
        return []
    return sorted(set(found), key=lambda p: len(p.parts), reverse=True)


def _unescape(field: str) -> str:
    """mountinfo writes space, tab, newline and backslash as octal escapes."""
    for code, char in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
        field = field.replace(code, char)
    return field


def unmount(point: Path) -> None:
    """Unmount; a file system still in use (a process left inside) is detached lazily."""
    try:
        _run([_tool("umount") or "umount", str(point)])
    except DiskError:
        _run([_tool("umount") or "umount", "-l", str(point)])


def unavailable(area: Path) -> str | None:
    """Why workspace file systems cannot be mounted on this host, or None when they can.

    Tried for real: a small image is made, mounted, written and removed in `area`.
    """
    if os.geteuid() != 0:
        return "oas does not run as root (mounting a workspace needs CAP_SYS_ADMIN)"
    for tool, package in (("mkfs.ext4", "e2fsprogs"), ("mount", "mount"), ("umount", "mount")):
        if _tool(tool) is None:
            return f"{tool} is not installed (apt-get install {package})"
    if not os.path.exists("/dev/loop-control"):
        return "no loop device (/dev/loop-control is missing)"
    probe = area / f".probe-{os.getpid()}"
    image = probe.with_suffix(IMAGE_SUFFIX)
    try:
        area.mkdir(mode=0o700, parents=True, exist_ok=True)
        probe.mkdir(mode=0o700, exist_ok=True)
        _make_image(image, _PROBE_BYTES)
        _mount(image, probe)
        try:
            (probe / "written").write_bytes(b"ok")
        finally:
            unmount(probe)
    except (DiskError, OSError) as exc:
        return str(exc)
    finally:
        image.unlink(missing_ok=True)
        try:
            probe.rmdir()
        except OSError:
            pass
    return None


def _make_image(image: Path, size: int) -> None:
    fd = os.open(image, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        os.ftruncate(fd, size)
    finally:
        os.close(fd)
    _run([_tool("mkfs.ext4") or "mkfs.ext4", *MKFS_OPTIONS, str(image)])


def _mount(image: Path, point: Path) -> None:
    _run([_tool("mount") or "mount", "-t", "ext4", "-o", MOUNT_OPTIONS, str(image), str(point)])


class Disks:
    """The image files of one workspace store, and their mounts."""

    def __init__(self, workspaces: Path) -> None:
        self.workspaces = workspaces
        self.area = workspaces / ".disks"

    def image(self, workspace_id: str) -> Path:
        return self.area / f"{workspace_id}{IMAGE_SUFFIX}"

    def has(self, workspace_id: str) -> bool:
        return self.image(workspace_id).exists()

    def reserved(self) -> int:
        """The sizes of all images together: what the workspaces may fill at most."""
        return sum(st.st_size for st in self._images())

    def written(self) -> int:
        """What the images take on the host's disk now (they are sparse)."""
        return sum(st.st_blocks * 512 for st in self._images())

    def _images(self) -> list[os.stat_result]:
        found = []
        try:
            with os.scandir(self.area) as entries:
                for entry in entries:
                    if entry.name.endswith(IMAGE_SUFFIX) and not entry.name.startswith("."):
                        try:
                            found.append(entry.stat(follow_symlinks=False))
                        except OSError:
                            continue
        except FileNotFoundError:
            pass
        return found

    def create(self, workspace_id: str, size: int, point: Path) -> None:
        """Make the workspace's image and mount it on `point` (an empty directory)."""
        self.area.mkdir(mode=0o700, exist_ok=True)
        image = self.image(workspace_id)
        try:
            _make_image(image, size)
            _mount(image, point)
        except (DiskError, OSError):
            image.unlink(missing_ok=True)
            raise
        try:
            (point / "lost+found").rmdir()  # a scratch file system: nothing to recover into
        except OSError:
            pass

    def ensure_mounted(self, workspace_id: str, point: Path) -> None:
        """Mount the workspace's image if it is not (after a restart of oas)."""
        if os.path.ismount(point):
            return
        point.mkdir(mode=0o700, exist_ok=True)
        _mount(self.image(workspace_id), point)
        log.info("workspace file system mounted again", container=workspace_id)

    def remove(self, workspace_id: str, point: Path) -> None:
        """Unmount the workspace's file system and delete its image."""
        for mounted in mounts_under(point):
            unmount(mounted)
        self.image(workspace_id).unlink(missing_ok=True)

    def unmount_all(self) -> int:
        """At shutdown: every workspace mount goes (the images stay; they mount again on
        next use, so a container outlives a restart as before)."""
        points = [p for p in mounts_under(self.workspaces) if p != self.workspaces]
        for point in points:
            try:
                unmount(point)
            except DiskError as exc:
                log.warning("workspace unmount failed", path=str(point), error=str(exc))
        return len(points)


def usage(point: Path) -> tuple[int, int]:
    """(used, free) bytes of the file system mounted at `point`, from its counters."""
    st = os.statvfs(point)
    return (st.f_blocks - st.f_bfree) * st.f_frsize, st.f_bavail * st.f_frsize
