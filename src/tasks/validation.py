"""validate-request: is this a Messages request the API would accept?"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from src.core.errors import AnthropicError, invalid_request
from src.schemas.anthropic import MessagesRequest
from src.tracking import step

_BRANCHES = {"str", "list", "int", "float", "bool", "dict", "none"}


def _where(loc: tuple[Any, ...]) -> list[str]:
    """The path as Anthropic writes it (`messages.0.content.1.text`).

    Pydantic also puts union branches (`str`, `list[...]`, `function-after[...]`) and the
    tag of a tagged union (the block type, right after a list index) into locations.
    """
    parts: list[str] = []
    previous: Any = None
    for part in loc:
        if isinstance(part, str) and ("[" in part or part in _BRANCHES):
            continue
        if isinstance(part, str) and isinstance(previous, int) and part in _TAGS:
            previous = None
            continue
        parts.append(str(part))
        previous = part
    return parts


_TAGS = {
    "text",
    "image",
    "document",
    "search_result",
    "tool_use",
    "tool_result",
    "thinking",
    "redacted_thinking",
    "unknown",
}


def describe_validation_error(exc: ValidationError) -> str:
    """One line naming the most specific problem the way Anthropic's API does (`field: problem`).

    For a field that may be a string or a list of blocks, "should be a valid string" is
    the least useful of its errors: the deepest location says what is actually wrong.
    """
    errors = exc.errors(include_url=False)
    first = max(errors, key=lambda e: (len(_where(e["loc"])), e["type"] != "string_type"))
    where = ".".join(_where(first["loc"]))
    message = first["msg"]
    if first["type"] == "missing":
        message = "Field required"
    text = f"{where}: {message}" if where else message
    if len(errors) > 1:
        text += f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})"
    return text


def parse_messages_request(body: Any) -> MessagesRequest:
    """The request as a model, or a 400 `invalid_request_error` saying what is wrong."""
    if not isinstance(body, dict):
        raise invalid_request("The request body must be a JSON object.")
    try:
        request = MessagesRequest.model_validate(body)
    except ValidationError as exc:
        raise invalid_request(describe_validation_error(exc)) from None
    if not request.messages:
        raise invalid_request("messages: at least one message is required")
    return request


@step("validate-request")
def validate_request(body: dict[str, Any]) -> MessagesRequest:
    """Task: the request validated, or an `AnthropicError` with status 400."""
    return parse_messages_request(body)


__all__ = ["AnthropicError", "parse_messages_request", "validate_request"]
