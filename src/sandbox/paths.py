"""Resolving a path the model names to a file inside its workspace, and nowhere else.

The model speaks in the sandbox's paths (`/workspace/app.py`, `app.py`, `/tmp/x`); oas
itself reads and writes those files on the host. So the walk is done the way a careful
kernel would, one component at a time from the workspace's own directory descriptor, each
step opened with `O_NOFOLLOW`: a symbolic link is never followed by the kernel, only by
these rules (its target re-read as a sandbox path), and `..` cannot climb above the
sandbox's root. A path or link that leads outside the mapped directories is refused, and
a directory swapped for a link mid-walk cannot redirect the walk (the next open fails).
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

MAX_LINK_HOPS = 40
_DIR_FLAGS = os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class PathError(Exception):
    """A path the model may not use, with the tool error code that says why."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class PathMap:
    """Which sandbox paths are which host directories, and where relative paths start."""

    mounts: dict[str, Path]  # sandbox absolute path -> host directory
    workdir: str  # sandbox path that relative paths are relative to

    def roots(self) -> dict[tuple[str, ...], Path]:
        return {_split(prefix): host for prefix, host in self.mounts.items()}


def _split(path: str) -> tuple[str, ...]:
    return tuple(part for part in path.split("/") if part)


@dataclass(slots=True)
class Resolved:
    """The directory that holds the named entry (an open descriptor) and the entry's name.

    `exists` says whether the entry is there; `shown` is the path as the sandbox sees it.
    Close it (or use it as a context manager) to release the descriptor.
    """

    dir_fd: int
    name: str
    shown: str
    exists: bool
    is_dir: bool = False
    _fds: list[int] = field(default_factory=list)

    def close(self) -> None:
        for fd in self._fds:
            try:
                os.close(fd)
            except OSError:
                pass
        self._fds.clear()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def resolve(
    path_map: PathMap,
    text: str,
    *,
    make_parents: bool = False,
    owner: tuple[int, int] | None = None,
) -> Resolved:
    """Resolve `text` to its parent directory descriptor and final name, confined.

    `make_parents` creates missing intermediate directories (for `create`), owned by
    `owner` when given. The final entry need not exist. Raises `PathError`.
    """
    if not isinstance(text, str) or not text.strip():
        raise PathError("invalid_tool_input", "path is empty")
    if "\0" in text:
        raise PathError("invalid_tool_input", "path contains a NUL byte")
    start = text if text.startswith("/") else f"{path_map.workdir.rstrip('/')}/{text}"
    roots = path_map.roots()
    pending = list(_split(start))
    names: list[str] = []  # the resolved sandbox path, component by component
    fds: list[int | None] = []  # a descriptor for each resolved component inside a root
    hops = 0

    def fail(code: str, message: str) -> PathError:
        for fd in fds:
            if fd is not None:
                os.close(fd)
        return PathError(code, message)

    def outside() -> PathError:
        return fail("invalid_tool_input", f"{text}: outside the workspace")

    while pending:
        part = pending.pop(0)
        if part == ".":
            continue
        if part == "..":
            if names:
                names.pop()
                fd = fds.pop()
                if fd is not None:
                    os.close(fd)
            continue
        candidate = (*names, part)
        parent_fd = fds[-1] if fds else None
        if parent_fd is None:
            host = roots.get(candidate)
            if host is not None:
                try:
                    fds.append(os.open(host, _DIR_FLAGS))
                except OSError as exc:
                    raise fail(
                        "unavailable", f"workspace directory unavailable: {exc.strerror}"
                    ) from None
                names.append(part)
                continue
            if any(root[: len(candidate)] == candidate for root in roots):
                names.append(part)  # on the way to a root (e.g. the rlimits host path)
                fds.append(None)
                continue
            raise outside()
        is_last = not pending
        try:
            fd = os.open(part, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent_fd)
        except FileNotFoundError:
            if is_last:
                shown = "/" + "/".join(candidate)
                return Resolved(parent_fd, part, shown, exists=False, _fds=_owned(fds))
            if not make_parents:
                raise fail(
                    "file_not_found", f"{'/' + '/'.join(candidate)}: no such directory"
                ) from None
            try:
                os.mkdir(part, 0o755, dir_fd=parent_fd)
                if owner is not None:
                    os.chown(part, *owner, dir_fd=parent_fd, follow_symlinks=False)
            except FileExistsError:
                pass
            pending.insert(0, part)
            continue
        except OSError as exc:
            raise fail(
                "invalid_tool_input", f"{'/' + '/'.join(candidate)}: {exc.strerror}"
            ) from None
        mode = os.fstat(fd).st_mode
        if stat.S_ISLNK(mode):
            os.close(fd)
            hops += 1
            if hops > MAX_LINK_HOPS:
                raise fail("invalid_tool_input", f"{text}: too many levels of symbolic links")
            target = os.readlink(part, dir_fd=parent_fd)
            if target.startswith("/"):
                for fd_ in fds:
                    if fd_ is not None:
                        os.close(fd_)
                names, fds = [], []
            pending = list(_split(target)) + pending
            continue
        if is_last:
            os.close(fd)
            shown = "/" + "/".join(candidate)
            return Resolved(
                parent_fd, part, shown, exists=True, is_dir=stat.S_ISDIR(mode), _fds=_owned(fds)
            )
        if not stat.S_ISDIR(mode):
            os.close(fd)
            raise fail("invalid_tool_input", f"{'/' + '/'.join(candidate)}: not a directory")
        names.append(part)
        fds.append(fd)

    # the path named a root itself (a directory one may view) or something above the roots
    if fds and fds[-1] is not None and tuple(names) in roots:
        shown = "/" + "/".join(names)
        return Resolved(fds[-1], ".", shown, exists=True, is_dir=True, _fds=_owned(fds))
    raise outside()


def _owned(fds: list[int | None]) -> list[int]:
    return [fd for fd in fds if fd is not None]


def open_dir(resolved: Resolved) -> int:
    """A readable descriptor of the resolved directory (for listing), without following."""
    return os.open(
        resolved.name,
        os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC,
        dir_fd=resolved.dir_fd,
    )
