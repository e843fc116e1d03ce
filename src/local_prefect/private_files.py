"""`oas`'s files are its own: folders 0700, files 0600, under the data directory.

The data directory holds the database's password, every request's payload and the logs;
another local user (or a model's bash call, which sees the host read-only) must read none
of it. New folders and files are created private where they are made (explicit modes,
not the umask: sandboxed commands rely on the modes their workspaces are given); this
module creates the data directory privately and tightens folders that an older `oas`
left readable by others, with a log line saying so.
"""

from __future__ import annotations

import os
from pathlib import Path

import structlog

from src.core.settings import Settings

log = structlog.get_logger("oas.files")

#: group or others may do nothing, except traverse by group (0710: as root, the database's
#: own user reaches its folders that way)
LOOSE = 0o067


def private_dir(path: Path) -> bool:
    """Create `path` 0700 (and missing parents), or tighten it; True if it was loose."""
    path = Path(path)
    missing = [p for p in [path, *path.parents] if not p.exists()]
    for folder in reversed(missing):
        folder.mkdir(mode=0o700, exist_ok=True)
    mode = path.stat().st_mode
    if mode & LOOSE:
        path.chmod(mode & 0o700 | 0o700)
        return True
    return False


def tighten_tree(root: Path) -> int:
    """Folders 0700 and files 0600 under `root`; returns how many were loose."""
    loose = 0
    for folder, folders, files in os.walk(root):
        for name in folders:
            path = os.path.join(folder, name)
            if os.lstat(path).st_mode & LOOSE and not os.path.islink(path):
                os.chmod(path, 0o700)
                loose += 1
        for name in files:
            path = os.path.join(folder, name)
            if not os.path.islink(path) and os.lstat(path).st_mode & 0o077:
                os.chmod(path, 0o600)
                loose += 1
    return loose


def secure_data_dir(settings: Settings) -> None:
    """The data directory and the payload store private; what was loose, tightened."""
    if private_dir(settings.data_dir):
        log.warning(
            "made the data directory private (it was readable by others)",
            path=str(settings.data_dir),
            mode="0700",
        )
    store = settings.payload_store_dir
    if private_dir(store) or (
        store.exists() and any(p.stat().st_mode & LOOSE for p in store.iterdir() if p.is_dir())
    ):
        count = tighten_tree(store)
        log.warning(
            "made the payload store private (it was readable by others)",
            path=str(store),
            tightened=count,
        )
