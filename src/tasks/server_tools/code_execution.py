"""Anthropic's code execution tool, run by oas in a local sandbox (`src.sandbox`).

`code_execution_20250825` (and later dated versions) gives the model two functions, named
as Anthropic's `server_tool_use` blocks name them: `bash_code_execution` (run a command)
and `text_editor_code_execution` (`view`, `create`, `str_replace`). The older
`code_execution_20250522` gives it `code_execution` (run Python). Each call is one task:
`bash-exec`, `file-view`, `file-create`, `str-replace`, `python-exec`.

The blocks follow Anthropic's API reference (the shapes its SDKs parse):
`bash_code_execution_tool_result` with a `bash_code_execution_result` or a
`bash_code_execution_tool_result_error`; `text_editor_code_execution_tool_result` with a
`text_editor_code_execution_{view,create,str_replace}_result` or a
`text_editor_code_execution_tool_result_error`; `code_execution_tool_result` for the older
version. A tool failure is one of those error forms, never an exception.

A request's workspace (Anthropic's container) is made on the first call, or is the one the
request names in its top-level `container` field; `response_fields()` gives the response's
`container: {id, expires_at}`.
"""

from __future__ import annotations

import asyncio
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

import structlog

from src.core.errors import AnthropicError
from src.core.settings import Settings
from src.sandbox import Busy, CommandResult, PathError, SandboxConfig, SandboxService, Workspace
from src.sandbox.files import CreateResult, ReplaceResult, ViewResult, WorkspaceFiles
from src.sandbox.service import service_for
from src.sandbox.workspace import ID_PATTERN
from src.schemas.anthropic import MessagesRequest, Tool
from src.tasks.server_tools.base import ServerTool, ToolCall, ToolOutcome
from src.tasks.server_tools.registry import register
from src.tracking import annotate, step

log = structlog.get_logger("oas.code_execution")

BASH = "bash_code_execution"
EDITOR = "text_editor_code_execution"
PYTHON = "code_execution"
LEGACY_TYPE = "code_execution_20250522"
MAX_COMMAND_CHARS = 100_000  # a single argument to bash stays under the kernel's 128 KiB
MAX_CODE_BYTES = 1024 * 1024


@dataclass(slots=True)
class ToolFailure:
    """A call that failed for a reason the model can act on: an error block, not a crash."""

    code: str
    message: str


# ------------------------------------------------------------------ tasks


@step("bash-exec")
async def bash_exec(service: SandboxService, workspace: Workspace,
                    command: str) -> CommandResult | ToolFailure:
    """Task: run one bash command in the workspace's sandbox."""
    reason = service.policy.check(command)
    if reason:
        return ToolFailure("invalid_tool_input", reason)
    return await _run(service, workspace, ["/bin/bash", "-c", command])


@step("python-exec")
async def python_exec(service: SandboxService, workspace: Workspace,
                      code: str) -> CommandResult | ToolFailure:
    """Task: run Python source (the older tool version) in the workspace's sandbox."""
    reason = service.policy.check("python3")
    if reason:
        return ToolFailure("invalid_tool_input", reason)
    return await _run(service, workspace, ["python3", "-"], stdin=code.encode())


@step("file-view")
async def file_view(files: WorkspaceFiles, path: str,
                    view_range: list[int] | None) -> ViewResult | ToolFailure:
    """Task: show a file (or list a directory) of the workspace."""
    return await _file_op(files.view, path, view_range)


@step("file-create")
async def file_create(files: WorkspaceFiles, path: str, text: str) -> CreateResult | ToolFailure:
    """Task: write a file in the workspace (replacing it if it exists)."""
    return await _file_op(files.create, path, text)


@step("str-replace")
async def str_replace(files: WorkspaceFiles, path: str, old: str,
                      new: str) -> ReplaceResult | ToolFailure:
    """Task: replace the one occurrence of a string in a workspace file."""
    return await _file_op(files.str_replace, path, old, new)


async def _run(service: SandboxService, workspace: Workspace, argv: list[str], *,
               stdin: bytes | None = None) -> CommandResult | ToolFailure:
    try:
        return await service.run(workspace, argv, stdin=stdin)
    except Busy:
        return ToolFailure("too_many_requests", "every sandbox slot is busy; try again shortly")


async def _file_op(fn: Any, *args: Any) -> Any:
    try:
        return await asyncio.to_thread(fn, *args)
    except PathError as exc:
        return ToolFailure(exc.code, exc.message)


# ------------------------------------------------------------------ the kind


class CodeExecutionTool(ServerTool):
    """One request's code execution tool: its version, its workspace, its calls."""

    def __init__(self, service: SandboxService, tool_type: str,
                 workspace: Workspace | None = None) -> None:
        self.service = service
        self.legacy = tool_type == LEGACY_TYPE
        self.workspace = workspace
        self._leases = ExitStack()
        self._acquire = asyncio.Lock()
        self._functions: list[dict[str, Any]] | None = None
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
        network = ("Network access is available." if config.network
                   else "There is no network access.")
        limits = (f"Each run is limited to {config.limits.timeout:g} seconds and "
                  f"{config.limits.max_output_bytes} bytes of output; processes started in "
                  "the background end with it.")
        if self.legacy:
            return [_function(PYTHON, (
                "Run Python 3 code in a sandboxed workspace on the server and get its stdout, "
                f"stderr and exit code. Print what you want to see. Files written to {workdir} "
                f"persist between calls. {network} {limits}"
            ), {"code": {"type": "string", "description": "Python source to run."}}, ["code"])]
        return [
            _function(BASH, (
                "Run a bash command in a sandboxed Linux workspace on the server and get its "
                f"stdout, stderr and exit code. The working directory is {workdir}; files there "
                "persist between calls (and in later requests that reuse this container). "
                f"Python 3 and the usual command-line tools are installed. {network} {limits}"
            ), {"command": {"type": "string", "description": "The bash command to run."}},
                ["command"]),
            _function(EDITOR, (
                f"View, create and edit files in the sandboxed workspace ({workdir}). "
                "`view` shows a file with line numbers (optionally `view_range` [start, end], "
                "end -1 for the end of the file) or lists a directory; `create` writes "
                "`file_text` to `path`, replacing an existing file and creating parent "
                "directories; `str_replace` replaces the single occurrence of `old_str` "
                "(which must match exactly, whitespace included, and be unique) with "
                f"`new_str`. Relative paths are relative to {workdir}."
            ), {
                "command": {"type": "string", "enum": ["view", "create", "str_replace"]},
                "path": {"type": "string", "description": "File or directory path."},
                "file_text": {"type": "string", "description": "Content for `create`."},
                "old_str": {"type": "string", "description": "Text to replace (`str_replace`)."},
                "new_str": {"type": "string", "description": "Replacement (`str_replace`)."},
                "view_range": {"type": "array", "items": {"type": "integer"},
                               "description": "[start, end] lines for `view`."},
            }, ["command", "path"]),
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
                failure = ToolFailure("unavailable", "no sandbox works on this server; see "
                                      "code_execution in /health/detailed")
                return _outcome(call, kind, failure)
            workspace = await self._workspace()
            async with self.service.store.lock(workspace):
                result = await self._dispatch(call, kind, workspace)
                self.service.store.touch(workspace)
        except Exception as exc:  # noqa: BLE001 - oas's own failure: tell the model, log it
            log.exception("code execution failed", tool=call.name)
            result = ToolFailure("unavailable", f"the sandbox failed: {type(exc).__name__}")
        return _outcome(call, kind, result, self.service)

    async def _dispatch(self, call: ToolCall, kind: str, workspace: Workspace) -> Any:
        data = call.input if isinstance(call.input, dict) else {}
        if kind == "bash":
            command = data.get("command")
            if not isinstance(command, str) or not command.strip():
                return ToolFailure("invalid_tool_input", "`command` must be a non-empty string")
            if len(command) > MAX_COMMAND_CHARS:
                return ToolFailure("invalid_tool_input", (
                    f"the command is {len(command)} characters; the limit is "
                    f"{MAX_COMMAND_CHARS}: write long content with the text editor's create"))
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
            if self.service.over_quota(workspace, len(text.encode())):
                return ToolFailure("invalid_tool_input", self._quota_message())
            return await file_create(files, path, text)
        if command == "str_replace":
            old, new = data.get("old_str"), data.get("new_str", "")
            if not isinstance(old, str) or not isinstance(new, str):
                return ToolFailure("invalid_tool_input", "`old_str` and `new_str` must be strings")
            return await str_replace(files, path, old, new)
        return ToolFailure("invalid_tool_input",
                           f"unknown command {command!r}: use view, create or str_replace")

    def _with_quota_note(self, result: Any, workspace: Workspace) -> Any:
        if isinstance(result, CommandResult) and self.service.over_quota(workspace):
            result.stderr += f"\n[oas] {self._quota_message()}\n"
        return result

    def _quota_message(self) -> str:
        mb = self.service.config.workspace_bytes // (1024 * 1024)
        return f"the workspace is over its {mb} MB quota: delete files before writing more"

    async def _workspace(self) -> Workspace:
        async with self._acquire:
            if self.workspace is None:
                self.workspace = await asyncio.to_thread(self.service.store.create)
                self._leases.enter_context(self.service.store.lease(self.workspace))
                isolation = self.service.isolation()
                annotate(tags=["code-execution"], container=self.workspace.id,
                         sandbox=isolation.tier if isolation else None)
                self._functions = None  # the working directory may now be known exactly
        return self.workspace

    # -- what the response carries

    def response_fields(self) -> dict[str, Any]:
        if self.workspace is None:
            return {}
        return {"container": self.workspace.container()}

    async def aclose(self) -> None:
        self._leases.close()


# ------------------------------------------------------------------ blocks


_ERROR_DETAIL = {
    "execution_time_exceeded": "the command ran past the {timeout:g} s time limit and was stopped",
    "output_file_too_large": ("the command wrote more than {output} bytes of output and was "
                              "stopped; redirect output to a file and look at it in parts"),
}


def _outcome(call: ToolCall, kind: str, result: Any,
             service: SandboxService | None = None) -> ToolOutcome:
    """The result block for the client and the text for the model."""
    content: dict[str, Any]
    detail = ""
    if isinstance(result, CommandResult):
        if result.setup_error:
            log.error("sandbox did not start", error=result.setup_error)
            result = ToolFailure("unavailable", "the sandbox failed to start")
        elif result.timed_out:
            result = _command_failure("execution_time_exceeded", result, service)
        elif result.output_exceeded and kind == "bash":
            result = _command_failure("output_file_too_large", result, service)
        elif result.output_exceeded:  # the older tool has no such error: cut and say so
            result.stderr += "\n[output truncated: the program was stopped at the output limit]"
    if isinstance(result, ToolFailure):
        detail = result.message
        content = _error_content(kind, result)
    elif isinstance(result, CommandResult):
        content = {
            "type": "bash_code_execution_result" if kind == "bash" else "code_execution_result",
            "stdout": result.stdout,
            "stderr": result.stderr,
            "return_code": result.return_code,
            "content": [],
        }
    elif isinstance(result, ViewResult):
        content = {"type": "text_editor_code_execution_view_result",
                   "file_type": result.file_type, "content": result.content}
        if result.file_type == "text":
            content.update(num_lines=result.num_lines, start_line=result.start_line,
                           total_lines=result.total_lines)
        if result.truncated:
            detail = "(cut at the output limit: use view_range to see the rest)"
    elif isinstance(result, CreateResult):
        content = {"type": "text_editor_code_execution_create_result",
                   "is_file_update": result.is_file_update}
    elif isinstance(result, ReplaceResult):
        content = {"type": "text_editor_code_execution_str_replace_result",
                   "old_start": result.old_start, "old_lines": result.old_lines,
                   "new_start": result.new_start, "new_lines": result.new_lines,
                   "lines": result.lines}
    else:  # pragma: no cover - every branch above returns one of these
        raise TypeError(type(result))
    block_type = {"bash": "bash_code_execution_tool_result",
                  "editor": "text_editor_code_execution_tool_result",
                  "python": "code_execution_tool_result"}[kind]
    block = {"type": block_type, "tool_use_id": call.id, "content": content}
    is_error = content["type"].endswith("_error")
    text = describe_result(content)
    if detail and detail not in text:
        text = f"{text}\n{detail}"
    return ToolOutcome(blocks=[block], for_model=text, is_error=is_error)


def _command_failure(code: str, result: CommandResult,
                     service: SandboxService | None) -> ToolFailure:
    limits = service.config.limits if service else None
    message = _ERROR_DETAIL[code].format(
        timeout=limits.timeout if limits else 0, output=limits.max_output_bytes if limits else 0)
    partial = (result.stdout + result.stderr).strip()
    if partial:  # the start of a flood, the end of a hang
        cut = partial[:2000] if code == "output_file_too_large" else partial[-2000:]
        message += f"\noutput before it stopped (cut):\n{cut}"
    return ToolFailure(code, message)


def _error_content(kind: str, failure: ToolFailure) -> dict[str, Any]:
    if kind == "editor":
        code = failure.code if failure.code in _EDITOR_CODES else "unavailable"
        return {"type": "text_editor_code_execution_tool_result_error", "error_code": code,
                "error_message": failure.message}
    if kind == "bash":
        code = failure.code if failure.code in _BASH_CODES else "invalid_tool_input"
        return {"type": "bash_code_execution_tool_result_error", "error_code": code}
    code = failure.code if failure.code in _PYTHON_CODES else "invalid_tool_input"
    return {"type": "code_execution_tool_result_error", "error_code": code}


_COMMON_CODES = {"invalid_tool_input", "unavailable", "too_many_requests",
                 "execution_time_exceeded"}
_BASH_CODES = _COMMON_CODES | {"output_file_too_large"}
_EDITOR_CODES = _COMMON_CODES | {"file_not_found"}
_PYTHON_CODES = _COMMON_CODES


def describe_result(content: dict[str, Any]) -> str:
    """What the model reads for a result block's `content` (live, and when history replays).

    Readable text rather than JSON: file contents and output keep their lines.
    """
    kind = content.get("type", "")
    if kind.endswith("_tool_result_error"):
        message = content.get("error_message")
        return f"Error: {content.get('error_code')}" + (f": {message}" if message else "")
    if kind in ("bash_code_execution_result", "code_execution_result"):
        parts = [f"exit code: {content.get('return_code')}"]
        if content.get("stdout"):
            parts.append(f"stdout:\n{content['stdout'].rstrip()}")
        if content.get("stderr"):
            parts.append(f"stderr:\n{content['stderr'].rstrip()}")
        if len(parts) == 1:
            parts.append("(no output)")
        return "\n".join(parts)
    if kind == "text_editor_code_execution_view_result":
        if content.get("file_type") != "text":
            return f"({content.get('file_type')} file: its content is not shown as text)"
        start = content.get("start_line") or 1
        lines = (content.get("content") or "").splitlines()
        numbered = "\n".join(f"{start + i:6}\t{line}" for i, line in enumerate(lines))
        total = content.get("total_lines")
        head = (f"lines {start}-{start + len(lines) - 1} of {total}" if lines
                else f"empty ({total} lines)")
        return f"{head}:\n{numbered}" if lines else head
    if kind == "text_editor_code_execution_create_result":
        return ("File updated (it existed and was replaced)." if content.get("is_file_update")
                else "File created.")
    if kind == "text_editor_code_execution_str_replace_result":
        return (f"Edited: lines {content.get('old_start')}+{content.get('old_lines')} became "
                f"{content.get('new_start')}+{content.get('new_lines')}:\n"
                + "\n".join(content.get("lines") or []))
    return str(content)


def _function(name: str, description: str, properties: dict[str, Any],
              required: list[str]) -> dict[str, Any]:
    return {"type": "function", "function": {
        "name": name, "description": description,
        "parameters": {"type": "object", "properties": properties, "required": required},
    }}


# ------------------------------------------------------------------ registration


_warned_off = False


def requested_container(request: MessagesRequest) -> str | None:
    """The request's top-level `container`: an id, or `{"id": ...}`."""
    value = (request.model_extra or {}).get("container")
    if isinstance(value, dict):
        value = value.get("id")
    return value if isinstance(value, str) and value else None


@register("code_execution_")
def code_execution_tool(definition: Tool, request: MessagesRequest,
                        settings: Settings) -> CodeExecutionTool | None:
    """The factory: None when code execution is off (the tool is then dropped, and logged)."""
    global _warned_off
    if not settings.code_execution:
        if not _warned_off:
            log.warning("code execution requested but OAS_CODE_EXECUTION is off; tool dropped")
            _warned_off = True
        return None
    service = service_for(SandboxConfig.from_settings(settings))
    workspace = None
    container = requested_container(request)
    if container is not None:
        workspace = service.store.get(container) if ID_PATTERN.match(container) else None
        if workspace is None:
            raise AnthropicError("invalid_request_error",
                                 f"container {container[:80]!r} was not found or has expired")
    return CodeExecutionTool(service, definition.type or "", workspace)
