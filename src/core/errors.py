"""Anthropic-shaped errors: one exception type that every layer raises and the API renders.

The body is always `{"type": "error", "error": {"type": ..., "message": ...}}` with the
status Anthropic uses for that type, so SDKs raise their usual exception classes.
"""

from __future__ import annotations

from typing import Any

# Anthropic's error types and the HTTP status that goes with each.
ERROR_STATUS: dict[str, int] = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}

_TYPE_FOR_STATUS: dict[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    408: "timeout_error",
    413: "request_too_large",
    422: "invalid_request_error",
    429: "rate_limit_error",
    500: "api_error",
    502: "api_error",
    503: "overloaded_error",
    504: "timeout_error",
    529: "overloaded_error",
}


class AnthropicError(Exception):
    """An error the client sees, in Anthropic's words.

    `retry_after` (seconds) becomes a `retry-after` header; `upstream_model` names the
    model that failed, for the operator.
    """

    def __init__(
        self,
        error_type: str,
        message: str,
        *,
        status: int | None = None,
        retry_after: str | None = None,
        upstream_model: str | None = None,
    ) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.message = message
        self.status = status or ERROR_STATUS.get(error_type, 500)
        self.retry_after = retry_after
        self.upstream_model = upstream_model

    def body(self, request_id: str | None = None) -> dict[str, Any]:
        """The JSON body of the HTTP error response (and of an SSE `error` event)."""
        out: dict[str, Any] = {
            "type": "error",
            "error": {"type": self.error_type, "message": self.message},
        }
        if request_id:
            out["request_id"] = request_id
        return out

    def __repr__(self) -> str:
        return f"AnthropicError({self.error_type!r}, {self.message!r}, status={self.status})"


def invalid_request(message: str) -> AnthropicError:
    """400: the client sent something the API cannot take."""
    return AnthropicError("invalid_request_error", message)


def error_type_for_status(status: int) -> str:
    """Anthropic's error type for an HTTP status from upstream."""
    if status in _TYPE_FOR_STATUS:
        return _TYPE_FOR_STATUS[status]
    if 400 <= status < 500:
        return "invalid_request_error"
    return "api_error"
