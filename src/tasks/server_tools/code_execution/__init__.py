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

Here: the factory `code_execution_tool` (registered for `code_execution_*` tool types);
`tool` is the kind, `tasks` its operations, `blocks` the result blocks and model text.
"""

from __future__ import annotations

import structlog

from src.core.errors import AnthropicError
from src.core.settings import Settings
from src.sandbox import SandboxConfig
from src.sandbox.service import service_for
from src.sandbox.workspace import ID_PATTERN
from src.schemas.anthropic import MessagesRequest, Tool
from src.tasks.server_tools.code_execution.blocks import describe_result
from src.tasks.server_tools.code_execution.tool import BASH, EDITOR, PYTHON, CodeExecutionTool
from src.tasks.server_tools.registry import register

__all__ = [
    "BASH",
    "EDITOR",
    "PYTHON",
    "CodeExecutionTool",
    "code_execution_tool",
    "describe_result",
    "requested_container",
]

log = structlog.get_logger("oas.code_execution")

_warned_off = False


def requested_container(request: MessagesRequest) -> str | None:
    """The request's top-level `container`: an id, or `{"id": ...}`."""
    value = (request.model_extra or {}).get("container")
    if isinstance(value, dict):
        value = value.get("id")
    return value if isinstance(value, str) and value else None


@register("code_execution_")
def code_execution_tool(
    definition: Tool, request: MessagesRequest, settings: Settings
) -> CodeExecutionTool | None:
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
            raise AnthropicError(
                "invalid_request_error",
                f"container {container[:80]!r} was not found or has expired",
            )
    return CodeExecutionTool(service, definition.type or "", workspace)
