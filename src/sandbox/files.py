"""The text editor's operations on a workspace: view, create, str_replace.

oas performs these itself (no process is started), through `paths.resolve`, so they are
confined the same way whatever isolation the commands get. Writes go to a new file that
is then renamed over the old one: a name that was hard-linked to something else is
replaced, never written through. Files not owned by the sandbox user are refused (when oas
runs as root, a hard link is the only way such a file gets into a workspace). A write
that finds the workspace full (its own file system: `ENOSPC`) is refused with the quota's
message, as a command's note says it.
"""

from __future__ import annotations

import base64
import errno
import os
import secrets
import stat
from dataclasses import dataclass

from src.sandbox.disk import workspace_full
from src.sandbox.paths import PathError, PathMap, Resolved, open_dir, resolve

_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "image"),
    (b"\xff\xd8\xff", "image"),
    (b"GIF87a", "image"),
    (b"GIF89a", "image"),
    (b"%PDF-", "pdf"),
)
MAX_LISTING = 500


@dataclass(slots=True)
class ViewResult:
    path: str
    file_type: str  # "text", "image" or "pdf" (base64 content)
    content: str
    num_lines: int | None = None
    start_line: int | None = None
    total_lines: int | None = None
    truncated: bool = False
    is_dir: bool = False


@dataclass(slots=True)
class CreateResult:
    path: str
    is_file_update: bool
    size: int


@dataclass(slots=True)
class ReplaceResult:
    path: str
    old_start: int
    old_lines: int
    new_start: int
    new_lines: int
    lines: list[str]


class WorkspaceFiles:
    """File operations confined to one workspace's mapped directories."""

    def __init__(
        self,
        path_map: PathMap,
        *,
        run_uid: int,
        chown_to: tuple[int, int] | None,
        max_output_bytes: int,
        max_edit_bytes: int,
        max_file_bytes: int,
        quota_bytes: int,
    ) -> None:
        self.path_map = path_map
        self.quota_bytes = quota_bytes
        self.run_uid = run_uid
        self.chown_to = chown_to
        self.max_output_bytes = max_output_bytes
        self.max_edit_bytes = max_edit_bytes
        self.max_file_bytes = max_file_bytes

    # ------------------------------------------------------------------ view

    def view(self, path: str, view_range: list[int] | None = None) -> ViewResult:
        with resolve(self.path_map, path) as r:
            if not r.exists:
                raise PathError("file_not_found", f"{r.shown}: no such file or directory")
            if r.is_dir:
                return self._listing(r)
            data, _ = self._read(r, self.max_edit_bytes, purpose="view")
        for magic, kind in _MAGIC:
            if data.startswith(magic) or (
                kind == "image" and data[8:12] == b"WEBP" and data.startswith(b"RIFF")
            ):
                return ViewResult(r.shown, kind, base64.b64encode(data).decode())
        lines = data.decode("utf-8", errors="replace").splitlines(keepends=True)
        total = len(lines)
        first, last = _range(view_range, total)
        chosen = lines[first - 1 : last]
        content, truncated = _fit(chosen, self.max_output_bytes)
        shown_lines = content.count("\n") + (0 if content.endswith("\n") or not content else 1)
        return ViewResult(
            r.shown,
            "text",
            content,
            num_lines=shown_lines,
            start_line=first,
            total_lines=total,
            truncated=truncated,
        )

    def _listing(self, r: Resolved) -> ViewResult:
        entries: list[str] = []
        fd = open_dir(r)
        try:
            _walk_listing(fd, "", 2, entries)
        finally:
            os.close(fd)
        truncated = len(entries) > MAX_LISTING
        entries = entries[:MAX_LISTING]
        content = "\n".join(entries) + ("\n" if entries else "")
        return ViewResult(
            r.shown,
            "text",
            content,
            num_lines=len(entries),
            start_line=1,
            total_lines=len(entries),
            truncated=truncated,
            is_dir=True,
        )

    # ------------------------------------------------------------------ create

    def create(self, path: str, text: str) -> CreateResult:
        data = text.encode("utf-8")
        if len(data) > self.max_file_bytes:
            raise PathError(
                "invalid_tool_input",
                f"file_text is {len(data)} bytes; the limit is {self.max_file_bytes}",
            )
        try:  # the parent directories made on the way take room too
            resolved = resolve(self.path_map, path, make_parents=True, owner=self.chown_to)
        except OSError as exc:
            raise self._failure(exc, path) from None
        with resolved as r:
            if r.is_dir:
                raise PathError("invalid_tool_input", f"{r.shown}: is a directory")
            mode = 0o644
            if r.exists:  # replaced by rename, never written through: any owner will do
                st = os.stat(r.name, dir_fd=r.dir_fd, follow_symlinks=False)
                if not stat.S_ISREG(st.st_mode):
                    raise PathError("invalid_tool_input", f"{r.shown}: not a regular file")
                mode = stat.S_IMODE(st.st_mode) & 0o777
            self._replace(r, data, mode)
            return CreateResult(r.shown, is_file_update=r.exists, size=len(data))

    # ------------------------------------------------------------------ str_replace

    def str_replace(self, path: str, old: str, new: str) -> ReplaceResult:
        if not old:
            raise PathError("invalid_tool_input", "old_str must not be empty")
        with resolve(self.path_map, path) as r:
            if not r.exists:
                raise PathError("file_not_found", f"{r.shown}: no such file")
            if r.is_dir:
                raise PathError("invalid_tool_input", f"{r.shown}: is a directory")
            data, st = self._read(r, self.max_edit_bytes, purpose="edit")
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError:
                raise PathError("invalid_tool_input", f"{r.shown}: not a UTF-8 text file") from None
            count = text.count(old)
            if count == 0:
                raise PathError("invalid_tool_input", f"old_str was not found in {r.shown}")
            if count > 1:
                raise PathError(
                    "invalid_tool_input",
                    f"old_str appears {count} times in {r.shown}; include more "
                    "surrounding lines so that it is unique",
                )
            result, new_text = _replace_once(text, old, new)
            encoded = new_text.encode("utf-8")
            if len(encoded) > self.max_file_bytes:
                raise PathError("invalid_tool_input", "the edited file would exceed the size limit")
            self._replace(r, encoded, stat.S_IMODE(st.st_mode) & 0o777)
            result.path = r.shown
            return result

    # ------------------------------------------------------------------ helpers

    def _check_regular(self, st: os.stat_result, shown: str) -> None:
        if not stat.S_ISREG(st.st_mode):
            raise PathError("invalid_tool_input", f"{shown}: not a regular file")
        if st.st_uid != self.run_uid:
            raise PathError("invalid_tool_input", f"{shown}: not owned by the sandbox user")

    def _read(self, r: Resolved, limit: int, *, purpose: str) -> tuple[bytes, os.stat_result]:
        try:
            fd = os.open(r.name, _READ_FLAGS, dir_fd=r.dir_fd)
        except OSError as exc:
            raise PathError("invalid_tool_input", f"{r.shown}: {exc.strerror}") from None
        try:
            st = os.fstat(fd)
            self._check_regular(st, r.shown)
            if st.st_size > limit:
                raise PathError(
                    "invalid_tool_input",
                    f"{r.shown} is {st.st_size} bytes, over the {limit} byte limit to {purpose}; "
                    "use bash (head, sed -n, grep) to work with it in parts",
                )
            chunks: list[bytes] = []
            remaining = limit + 1
            while remaining > 0:
                chunk = os.read(fd, min(remaining, 1 << 20))
                if not chunk:
                    break
                chunks.append(chunk)
                remaining -= len(chunk)
            return b"".join(chunks)[:limit], st
        finally:
            os.close(fd)

    def _replace(self, r: Resolved, data: bytes, mode: int) -> None:
        temp = f".{r.name[:200]}.oas-{secrets.token_hex(4)}"
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        fd = os.open(temp, flags, 0o600, dir_fd=r.dir_fd)
        try:
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                if self.chown_to is not None:
                    os.fchown(fd, *self.chown_to)
                os.fchmod(fd, mode)
            finally:
                os.close(fd)
            os.rename(temp, r.name, src_dir_fd=r.dir_fd, dst_dir_fd=r.dir_fd)
        except OSError as exc:
            try:
                os.unlink(temp, dir_fd=r.dir_fd)
            except OSError:
                pass
            raise self._failure(exc, r.shown) from None

    def _failure(self, exc: OSError, shown: str) -> PathError:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return PathError("invalid_tool_input", workspace_full(self.quota_bytes))
        return PathError("invalid_tool_input", f"{shown}: {exc.strerror}")


def _range(view_range: list[int] | None, total: int) -> tuple[int, int]:
    """1-based inclusive line range; `[start, -1]` reads to the end."""
    if view_range is None:
        return 1, total
    if (
        not isinstance(view_range, list)
        or len(view_range) != 2
        or not all(isinstance(n, int) and not isinstance(n, bool) for n in view_range)
    ):
        raise PathError("invalid_tool_input", "view_range must be two integers [start, end]")
    start, end = view_range
    if end == -1:
        end = total
    if start < 1 or end < start or (total and start > total):
        raise PathError(
            "invalid_tool_input", f"view_range {view_range} is not within the file's {total} lines"
        )
    return start, min(end, total)


def _fit(lines: list[str], limit: int) -> tuple[str, bool]:
    """Whole lines up to `limit` bytes (at least part of the first)."""
    out: list[str] = []
    size = 0
    for line in lines:
        size += len(line.encode("utf-8"))
        if size > limit:
            if not out:
                out.append(line.encode("utf-8")[:limit].decode("utf-8", errors="ignore"))
            return "".join(out), True
        out.append(line)
    return "".join(out), False


def _replace_once(text: str, old: str, new: str) -> tuple[ReplaceResult, str]:
    """Replace the one occurrence and describe it as a diff hunk over whole lines."""
    at = text.index(old)
    end = at + len(old)
    line_start = text.rfind("\n", 0, at) + 1
    if text[end - 1] == "\n":
        region_end = end
    else:
        newline = text.find("\n", end)
        region_end = len(text) if newline == -1 else newline + 1
    new_text = text[:at] + new + text[end:]
    old_region = text[line_start:region_end]
    new_region = new_text[line_start : region_end - len(old) + len(new)]
    old_list = old_region.splitlines()
    new_list = new_region.splitlines()
    start = text.count("\n", 0, at) + 1
    result = ReplaceResult(
        path="",
        old_start=start,
        old_lines=len(old_list),
        new_start=start,
        new_lines=len(new_list),
        lines=[f"-{line}" for line in old_list] + [f"+{line}" for line in new_list],
    )
    return result, new_text


def _walk_listing(fd: int, prefix: str, depth: int, out: list[str]) -> None:
    """Entries up to `depth` levels, hidden ones left out, directories marked with `/`."""
    with os.scandir(fd) as it:
        entries = sorted((e for e in it if not e.name.startswith(".")), key=lambda e: e.name)
    for entry in entries:
        if len(out) > MAX_LISTING:
            return
        is_dir = entry.is_dir(follow_symlinks=False)
        out.append(f"{prefix}{entry.name}{'/' if is_dir else ''}")
        if is_dir and depth > 1:
            try:
                child = os.open(
                    entry.name,
                    os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC,
                    dir_fd=fd,
                )
            except OSError:
                continue
            try:
                _walk_listing(child, f"{prefix}{entry.name}/", depth - 1, out)
            finally:
                os.close(child)
