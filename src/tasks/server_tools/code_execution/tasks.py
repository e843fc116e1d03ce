"""The code execution tool's operations, each a task the dashboard names for what it does.

A failure the model can act on (a timeout, a missing file, a refused command) is returned
as a `ToolFailure`, so the task completes: it did its job, which was to find out. Only a
failure of oas itself raises (and shows as a failed task).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from src.sandbox import Busy, CommandResult, PathError, SandboxService, Workspace
from src.sandbox.files import CreateResult, ReplaceResult, ViewResult, WorkspaceFiles
from src.tracking import step


@dataclass(slots=True)
class ToolFailure:
    """A call that failed for a reason the model can act on: an error block, not a crash."""

    code: str
    message: str


@step("bash-exec")
async def bash_exec(
    service: SandboxService, workspace: Workspace, command: str
) -> CommandResult | ToolFailure:
    """Task: run one bash command in the workspace's sandbox."""
    reason = service.policy.check(command)
    if reason:
        return ToolFailure("invalid_tool_input", reason)
    return await _run(service, workspace, ["/bin/bash", "-c", command])


@step("python-exec")
async def python_exec(
    service: SandboxService, workspace: Workspace, code: str
) -> CommandResult | ToolFailure:
    """Task: run Python source (the older tool version) in the workspace's sandbox."""
    reason = service.policy.check("python3")
    if reason:
        return ToolFailure("invalid_tool_input", reason)
    return await _run(service, workspace, ["python3", "-"], stdin=code.encode())


@step("file-view")
async def file_view(
    files: WorkspaceFiles, path: str, view_range: list[int] | None
) -> ViewResult | ToolFailure:
    """Task: show a file (or list a directory) of the workspace."""
    return await _file_op(files.view, path, view_range)


@step("file-create")
async def file_create(files: WorkspaceFiles, path: str, text: str) -> CreateResult | ToolFailure:
    """Task: write a file in the workspace (replacing it if it exists)."""
    return await _file_op(files.create, path, text)


@step("str-replace")
async def str_replace(
    files: WorkspaceFiles, path: str, old: str, new: str
) -> ReplaceResult | ToolFailure:
    """Task: replace the one occurrence of a string in a workspace file."""
    return await _file_op(files.str_replace, path, old, new)


async def _run(
    service: SandboxService, workspace: Workspace, argv: list[str], *, stdin: bytes | None = None
) -> CommandResult | ToolFailure:
    try:
        return await service.run(workspace, argv, stdin=stdin)
    except Busy:
        return ToolFailure("too_many_requests", "every sandbox slot is busy; try again shortly")


async def _file_op(fn: Any, *args: Any) -> Any:
    try:
        return await asyncio.to_thread(fn, *args)
    except PathError as exc:
        return ToolFailure(exc.code, exc.message)
