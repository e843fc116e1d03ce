"""Anthropic's result blocks for code execution, and the text the model reads instead.

The client gets the block shapes of Anthropic's API reference; the model gets readable text
(`describe_result`), the same whether the result is fresh or replayed from history.
"""

from __future__ import annotations

from typing import Any

import structlog

from src.sandbox import CommandResult, SandboxService
from src.sandbox.files import CreateResult, ReplaceResult, ViewResult
from src.tasks.server_tools.base import ToolCall, ToolOutcome
from src.tasks.server_tools.code_execution.tasks import ToolFailure

log = structlog.get_logger("oas.code_execution")

_ERROR_DETAIL = {
    "execution_time_exceeded": "the command ran past the {timeout:g} s time limit and was stopped",
    "output_file_too_large": (
        "the command wrote more than {output} bytes of output and was "
        "stopped; redirect output to a file and look at it in parts"
    ),
}


def outcome(
    call: ToolCall, kind: str, result: Any, service: SandboxService | None = None
) -> ToolOutcome:
    """The result block for the client and the text for the model."""
    content: dict[str, Any]
    detail = ""
    if isinstance(result, CommandResult):
        if result.setup_error:
            log.error("sandbox did not start", error=result.setup_error)
            result = ToolFailure("unavailable", "the sandbox failed to start")
        elif result.stopped:  # a limit over the whole command: the output so far, and why
            log.warning("sandboxed command stopped", reason=result.stopped)
            result.stderr = f"{result.stderr.rstrip()}\n[oas] {result.stopped}\n".lstrip()
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
        content = {
            "type": "text_editor_code_execution_view_result",
            "file_type": result.file_type,
            "content": result.content,
        }
        if result.file_type == "text":
            content.update(
                num_lines=result.num_lines,
                start_line=result.start_line,
                total_lines=result.total_lines,
            )
        if result.truncated:
            detail = "(cut at the output limit: use view_range to see the rest)"
    elif isinstance(result, CreateResult):
        content = {
            "type": "text_editor_code_execution_create_result",
            "is_file_update": result.is_file_update,
        }
    elif isinstance(result, ReplaceResult):
        content = {
            "type": "text_editor_code_execution_str_replace_result",
            "old_start": result.old_start,
            "old_lines": result.old_lines,
            "new_start": result.new_start,
            "new_lines": result.new_lines,
            "lines": result.lines,
        }
    else:  # pragma: no cover - every branch above returns one of these
        raise TypeError(type(result))
    block_type = {
        "bash": "bash_code_execution_tool_result",
        "editor": "text_editor_code_execution_tool_result",
        "python": "code_execution_tool_result",
    }[kind]
    block = {"type": block_type, "tool_use_id": call.id, "content": content}
    is_error = content["type"].endswith("_error")
    text = describe_result(content)
    if detail and detail not in text:
        text = f"{text}\n{detail}"
    return ToolOutcome(blocks=[block], for_model=text, is_error=is_error)


def _command_failure(
    code: str, result: CommandResult, service: SandboxService | None
) -> ToolFailure:
    limits = service.config.limits if service else None
    message = _ERROR_DETAIL[code].format(
        timeout=limits.timeout if limits else 0, output=limits.max_output_bytes if limits else 0
    )
    partial = (result.stdout + result.stderr).strip()
    if partial:  # the start of a flood, the end of a hang
        cut = partial[:2000] if code == "output_file_too_large" else partial[-2000:]
        message += f"\noutput before it stopped (cut):\n{cut}"
    return ToolFailure(code, message)


def _error_content(kind: str, failure: ToolFailure) -> dict[str, Any]:
    if kind == "editor":
        code = failure.code if failure.code in _EDITOR_CODES else "unavailable"
        return {
            "type": "text_editor_code_execution_tool_result_error",
            "error_code": code,
            "error_message": failure.message,
        }
    if kind == "bash":
        code = failure.code if failure.code in _BASH_CODES else "invalid_tool_input"
        return {"type": "bash_code_execution_tool_result_error", "error_code": code}
    code = failure.code if failure.code in _PYTHON_CODES else "invalid_tool_input"
    return {"type": "code_execution_tool_result_error", "error_code": code}


_COMMON_CODES = {
    "invalid_tool_input",
    "unavailable",
    "too_many_requests",
    "execution_time_exceeded",
}
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
        head = (
            f"lines {start}-{start + len(lines) - 1} of {total}"
            if lines
            else f"empty ({total} lines)"
        )
        return f"{head}:\n{numbered}" if lines else head
    if kind == "text_editor_code_execution_create_result":
        return (
            "File updated (it existed and was replaced)."
            if content.get("is_file_update")
            else "File created."
        )
    if kind == "text_editor_code_execution_str_replace_result":
        return (
            f"Edited: lines {content.get('old_start')}+{content.get('old_lines')} became "
            f"{content.get('new_start')}+{content.get('new_lines')}:\n"
            + "\n".join(content.get("lines") or [])
        )
    return str(content)
