"""The code execution kind: what one request's tool offers the model, and how calls run."""

from __future__ import annotations

import asyncio
from contextlib import ExitStack
from typing import Any

import structlog

from src.sandbox import CommandResult, SandboxService, Workspace
from src.sandbox.workspace import NoRoom
from src.tasks.server_tools.base import ServerTool, ToolCall, ToolOutcome
from src.tasks.server_tools.code_execution.blocks import outcome
from src.tasks.server_tools.code_execution.tasks import (
    ToolFailure,
    bash_exec,
    file_create,
    file_view,
    python_exec,
    str_replace,
)
from src.tracking import annotate

log = structlog.get_logger("oas.code_execution")

BASH = "bash_code_execution"
EDITOR = "text_editor_code_execution"
PYTHON = "code_execution"
LEGACY_TYPE = "code_execution_20250522"
MAX_COMMAND_CHARS = 100_000  # a single argument to bash stays under the kernel's 128 KiB
MAX_CODE_BYTES = 1024 * 1024


class CodeExecutionTool(ServerTool):
    """One request's code execution tool: its version, its workspace, its calls."""

    def __init__(
        self, service: SandboxService, tool_type: str, workspace: Workspace | None = None
    ) -> None:
        self.service = service
        self.legacy = tool_type == LEGACY_TYPE
        self.workspace = workspace
        self._leases = ExitStack()
        self._acquire = asyncio.Lock()
        self._functions: list[dict[str, Any]] | None = None
        self._announced = False
        if workspace is not None:
            self._leases.enter_context(service.store.lease(workspace))

    # -- what the model is offered

    def functions(self) -> list[dict[str, Any]]:
        if self._functions is None:
            self._functions = self._describe()
        return self._functions

    def _describe(self) -> list[dict[str, Any]]:
        isolation = self.service.isolation()
        config = self.service.config
        workdir = "/workspace"
        if isolation is not None and self.workspace is not None:
            workdir = isolation.workdir(self.workspace)
        elif isolation is not None and isolation.tier == "rlimits":
            workdir = "the working directory"
        network = (
            "Network access is available." if config.network else "There is no network access."
        )
        limits = (
            f"Each run is limited to {config.limits.timeout:g} seconds and "
            f"{config.limits.max_output_bytes} bytes of output; processes started in "
            "the background end with it."
        )
        if self.legacy:
            return [
                _function(
                    PYTHON,
                    (
                        "Run Python 3 code in a sandboxed workspace on the server and get its "
                        "stdout, stderr and exit code. Print what you want to see. Files written "
                        f"to {workdir} persist between calls. {network} {limits}"
                    ),
                    {"code": {"type": "string", "description": "Python source to run."}},
                    ["code"],
                )
            ]
        return [
            _function(
                BASH,
                (
                    "Run a bash command in a sandboxed Linux workspace on the server and get its "
                    f"stdout, stderr and exit code. The working directory is {workdir}; files "
                    "there persist between calls (and in later requests that reuse this "
                    "container). "
                    f"Python 3 and the usual command-line tools are installed. {network} {limits}"
                ),
                {"command": {"type": "string", "description": "The bash command to run."}},
                ["command"],
            ),
            _function(
                EDITOR,
                (
                    f"View, create and edit files in the sandboxed workspace ({workdir}). "
                    "`view` shows a file with line numbers (optionally `view_range` [start, end], "
                    "end -1 for the end of the file) or lists a directory; `create` writes "
                    "`file_text` to `path`, replacing an existing file and creating parent "
                    "directories; `str_replace` replaces the single occurrence of `old_str` "
                    "(which must match exactly, whitespace included, and be unique) with "
                    f"`new_str`. Relative paths are relative to {workdir}."
                ),
                {
                    "command": {"type": "string", "enum": ["view", "create", "str_replace"]},
                    "path": {"type": "string", "description": "File or directory path."},
                    "file_text": {"type": "string", "description": "Content for `create`."},
                    "old_str": {
                        "type": "string",
                        "description": "Text to replace (`str_replace`).",
                    },
                    "new_str": {"type": "string", "description": "Replacement (`str_replace`)."},
                    "view_range": {
                        "type": "array",
                        "items": {"type": "integer"},
                        "description": "[start, end] lines for `view`.",
                    },
                },
                ["command", "path"],
            ),
        ]

    # -- running calls

    async def run(self, call: ToolCall) -> ToolOutcome:
        if call.name == BASH:
            kind = "bash"
        elif call.name == EDITOR:
            kind = "editor"
        else:
            kind = "python"
        try:
            if self.service.isolation() is None:
                failure = ToolFailure(
                    "unavailable",
                    "no sandbox works on this server; see code_execution in /health/detailed",
                )
                return outcome(call, kind, failure)
            workspace = await self._workspace()
            async with self.service.store.lock(workspace):
                result = await self._dispatch(call, kind, workspace)
                self.service.store.touch(workspace)
        except NoRoom as exc:  # the workspaces' total is reserved: the model can act on it
            result = ToolFailure("unavailable", str(exc))
        except Exception as exc:
            log.exception("code execution failed", tool=call.name)
            result = ToolFailure("unavailable", f"the sandbox failed: {type(exc).__name__}")
        return outcome(call, kind, result, self.service)

    async def _dispatch(self, call: ToolCall, kind: str, workspace: Workspace) -> Any:
        data = call.input if isinstance(call.input, dict) else {}
        if kind == "bash":
            command = data.get("command")
            if not isinstance(command, str) or not command.strip():
                return ToolFailure("invalid_tool_input", "`command` must be a non-empty string")
            if len(command) > MAX_COMMAND_CHARS:
                return ToolFailure(
                    "invalid_tool_input",
                    (
                        f"the command is {len(command)} characters; the limit is "
                        f"{MAX_COMMAND_CHARS}: write long content with the text editor's create"
                    ),
                )
            result = await bash_exec(self.service, workspace, command)
            return self._with_quota_note(result, workspace)
        if kind == "python":
            code = data.get("code")
            if not isinstance(code, str) or not code.strip():
                return ToolFailure("invalid_tool_input", "`code` must be a non-empty string")
            if len(code.encode()) > MAX_CODE_BYTES:
                return ToolFailure("invalid_tool_input", "the code is over 1 MiB")
            result = await python_exec(self.service, workspace, code)
            return self._with_quota_note(result, workspace)
        return await self._edit(data, workspace)

    async def _edit(self, data: dict[str, Any], workspace: Workspace) -> Any:
        command, path = data.get("command"), data.get("path")
        if not isinstance(path, str) or not path:
            return ToolFailure("invalid_tool_input", "`path` must be a non-empty string")
        files = self.service.files(workspace)
        if command == "view":
            view_range = data.get("view_range")
            return await file_view(files, path, view_range)
        if command == "create":
            text = data.get("file_text")
            if not isinstance(text, str):
                return ToolFailure("invalid_tool_input", "`file_text` must be a string")
            problem = self.service.quota_problem(workspace, len(text.encode()))
            if problem:
                return ToolFailure("invalid_tool_input", problem)
            return await file_create(files, path, text)
        if command == "str_replace":
            old, new = data.get("old_str"), data.get("new_str", "")
            if not isinstance(old, str) or not isinstance(new, str):
                return ToolFailure("invalid_tool_input", "`old_str` and `new_str` must be strings")
            return await str_replace(files, path, old, new)
        return ToolFailure(
            "invalid_tool_input", f"unknown command {command!r}: use view, create or str_replace"
        )

    def _with_quota_note(self, result: Any, workspace: Workspace) -> Any:
        if isinstance(result, CommandResult):
            problem = self.service.quota_problem(workspace)
            if problem:
                result.stderr += f"\n[oas] {problem}\n"
        return result

    async def _workspace(self) -> Workspace:
        async with self._acquire:
            if self.workspace is None:
                self.workspace = await asyncio.to_thread(self.service.store.create)
                self._leases.enter_context(self.service.store.lease(self.workspace))
                self._functions = None  # the working directory may now be known exactly
            if not self._announced:
                isolation = self.service.isolation()
                annotate(
                    tags=["code-execution"],
                    container=self.workspace.id,
                    sandbox=isolation.tier if isolation else None,
                )
                self._announced = True
        return self.workspace

    # -- what the response carries

    def response_fields(self) -> dict[str, Any]:
        if self.workspace is None:
            return {}
        return {"container": self.workspace.container()}

    async def aclose(self) -> None:
        self._leases.close()


def _function(
    name: str, description: str, properties: dict[str, Any], required: list[str]
) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {
            "name": name,
            "description": description,
            "parameters": {"type": "object", "properties": properties, "required": required},
        },
    }
