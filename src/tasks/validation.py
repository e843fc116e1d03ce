"""validate-request: is this a Messages request the API would accept?"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from src.core.errors import AnthropicError, invalid_request
from src.schemas.anthropic import MessagesRequest
from src.tracking import step


def _where(loc: tuple[Any, ...]) -> str:
    # Pydantic puts union/tag names into locations; Anthropic's messages show the path.
    parts = [str(p) for p in loc if not (isinstance(p, str) and ("[" in p or p in _TAGS))]
    return ".".join(parts)


_TAGS = {"text", "image", "document", "search_result", "tool_use", "tool_result", "thinking",
         "redacted_thinking", "unknown", "str", "list", "function-after", "int", "float"}


def describe_validation_error(exc: ValidationError) -> str:
    """One line naming the first problem the way Anthropic's API does (`field: problem`)."""
    errors = exc.errors(include_url=False)
    first = errors[0]
    where = _where(first["loc"])
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
