"""Anthropic-shaped errors: one exception type that every layer raises and the API renders.

The body is always `{"type": "error", "error": {"type": ..., "message": ...},
"request_id": ...}` with the status Anthropic uses for that type, so SDKs raise their
usual exception classes (and retry where Anthropic's own API would tell them to).
"""

from __future__ import annotations

import re
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

# Statuses an Anthropic client knows what to do with; an upstream's other statuses are
# turned into the nearest of these (502 stays: it is the honest answer of a gateway whose
# upstream failed, and every SDK treats it as a retryable server error).
_CLIENT_STATUSES = frozenset({400, 401, 402, 403, 404, 413, 429, 500, 502, 504, 529})

# Anything shaped like an API key (OpenRouter `sk-or-v1-...`, Anthropic `sk-ant-...`,
# OpenAI `sk-...`): upstream errors sometimes echo the key they were sent.
_KEY_SHAPE = re.compile(r"sk-(?:or-v1-|ant-(?:api\d\d-)?|proj-)?[A-Za-z0-9_\-]{8,}")
REDACTED = "[redacted]"


class AnthropicError(Exception):
    """An error the client sees, in Anthropic's words.

    `retry_after` (seconds) becomes a `retry-after` header; `upstream_model` names the
    model that failed, for the operator; `retryable` says whether the same request may
    be sent again (to the same model or a fallback) because nothing was done upstream.
    """

    def __init__(
        self,
        error_type: str,
        message: str,
        *,
        status: int | None = None,
        retry_after: str | None = None,
        upstream_model: str | None = None,
        retryable: bool = False,
    ) -> None:
        message = scrub_secrets(message)
        super().__init__(message)
        self.error_type = error_type
        self.message = message
        self.status = status or ERROR_STATUS.get(error_type, 500)
        self.retry_after = retry_after
        self.upstream_model = upstream_model
        self.retryable = retryable
        #: set once an `event: error` carrying this error went out on a stream
        self.sent_to_client = False

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


def overloaded(message: str, retry_after: str | None = "1") -> AnthropicError:
    """529: this server (not the upstream) has no room for the request right now."""
    return AnthropicError("overloaded_error", message, retry_after=retry_after)


def error_type_for_status(status: int) -> str:
    """Anthropic's error type for an HTTP status from upstream."""
    if status in _TYPE_FOR_STATUS:
        return _TYPE_FOR_STATUS[status]
    if 400 <= status < 500:
        return "invalid_request_error"
    return "api_error"


def client_status(status: int) -> int:
    """The status a client gets for an upstream's status (503 -> 529, 408 -> 504, ...)."""
    if status in _CLIENT_STATUSES:
        return status
    if status == 503:
        return 529
    if status == 408:
        return 504
    if 400 <= status < 500:
        return 400
    return 500


def scrub_secrets(text: str, *secrets: str) -> str:
    """`text` with the given secrets and anything shaped like an API key masked."""
    for secret in secrets:
        # (a "key" shorter than this is no secret worth mangling every message for)
        if len(secret) >= 8 and secret in text:
            text = text.replace(secret, REDACTED)
    if "sk-" in text:
        text = _KEY_SHAPE.sub(REDACTED, text)
    return text
