"""Upstream failures as the Anthropic errors a client expects, each naming the model.

Whatever the upstream said is kept in the message (OpenRouter's `error.message`, the
provider's raw message, moderation reasons, the provider's name): it says what to fix.
Each error also says whether the request may be sent again (`retryable`): only when
nothing was done upstream (refused for load or rate, never reached, no first byte).
"""

from __future__ import annotations

from typing import Any

import orjson
import structlog

from src.core.errors import AnthropicError, client_status, error_type_for_status, scrub_secrets

#: statuses that mean "not done, try again later" (OpenRouter: 408 timeout, 429 rate
#: limit, 502 model down, 503 no provider available; 504 and 529 from other gateways)
RETRYABLE_STATUSES = frozenset({408, 429, 502, 503, 504, 529})

_MAX_DETAIL = 500

log = structlog.get_logger("oas.upstream")


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else orjson.dumps(value).decode()
    text = " ".join(text.split())
    return text if len(text) <= _MAX_DETAIL else text[:_MAX_DETAIL] + "..."


def describe(error: dict[str, Any]) -> str:
    """OpenRouter's error object in one line: its message and what its metadata adds."""
    message = str(error.get("message") or "").strip()
    metadata = error.get("metadata")
    if not isinstance(metadata, dict):
        return message
    details = []
    provider = metadata.get("provider_name")
    if metadata.get("reasons"):
        reasons = metadata["reasons"]
        reasons = ", ".join(map(str, reasons)) if isinstance(reasons, list) else str(reasons)
        details.append(f"flagged for {reasons}")
        if metadata.get("flagged_input"):
            details.append(f"input: {_short(metadata['flagged_input'])}")
    if metadata.get("raw"):
        details.append(f"{provider or 'provider'} said: {_short(metadata['raw'])}")
    elif provider:
        details.append(f"provider {provider}")
    return f"{message} ({'; '.join(details)})" if details else message


def _named(message: str, model: str) -> str:
    return f"{message} [upstream model {model}]"


def upstream_error(
    status: int,
    raw: bytes,
    model: str,
    retry_after: str | None = None,
    secrets: tuple[str, ...] = (),
) -> AnthropicError:
    """An upstream HTTP error response (status >= 400) as an Anthropic error."""
    message = ""
    try:
        body = orjson.loads(raw) if raw else {}
    except orjson.JSONDecodeError:
        body = {}
        message = _short(raw.decode("utf-8", "replace"))
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        message = describe(error) or message
    elif isinstance(error, str):
        message = error
    if not message:
        message = f"The upstream answered HTTP {status}"
    if status == 401:
        # Clients (Claude Code: "Please run /login") take a 401 for their own key; say whose.
        message = f"The upstream rejected oas's API key (check OPENROUTER_API_KEY): {message}"
    return AnthropicError(
        error_type_for_status(status),
        scrub_secrets(_named(message, model), *secrets),
        status=client_status(status),
        retry_after=retry_after if status in (429, 503, 529) else None,
        upstream_model=model,
        retryable=status in RETRYABLE_STATUSES,
    )


def error_in_body(error: Any, model: str, secrets: tuple[str, ...] = ()) -> AnthropicError:
    """An error the upstream sent with status 200: in a whole answer, or as a stream chunk.

    OpenRouter does this once a provider has accepted the request; `error.code` is then
    the HTTP status it would have used.
    """
    if isinstance(error, dict):
        message = describe(error) or "The upstream reported an error"
        code = error.get("code")
    else:
        message, code = str(error), None
    status = code if isinstance(code, int) and 400 <= code < 600 else 502
    return AnthropicError(
        error_type_for_status(status),
        scrub_secrets(_named(message, model), *secrets),
        status=client_status(status),
        upstream_model=model,
        retryable=status in RETRYABLE_STATUSES,
    )


def timeout_error(model: str, what: str, seconds: float | None) -> AnthropicError:
    """504: the upstream stayed silent too long (`what`: which wait ran out)."""
    limit = f" within {seconds:g}s" if seconds else ""
    return AnthropicError(
        "timeout_error",
        _named(f"The upstream did not answer{limit} ({what})", model),
        upstream_model=model,
        retryable=True,
    )


def connection_error(model: str, exc: BaseException, where: str) -> AnthropicError:
    """502: the upstream could not be reached, or dropped the connection."""
    detail = str(exc).strip()
    kind = type(exc).__name__
    text = f"{kind}: {detail}" if detail else kind
    return AnthropicError(
        "api_error",
        _named(f"The upstream connection failed {where} ({_short(text)})", model),
        status=502,
        upstream_model=model,
        retryable=True,
    )


def malformed(model: str, what: str) -> AnthropicError:
    """502: the upstream answered, but not in a shape anyone can read."""
    return AnthropicError(
        "api_error", _named(f"The upstream sent {what}", model), status=502, upstream_model=model
    )


def upstream_stream_error(error: Any) -> AnthropicError:
    """An error the upstream sent inside its stream, as an Anthropic error."""
    if isinstance(error, dict):
        message = str(error.get("message") or error)
        code = error.get("code")
    else:
        message, code = str(error), None
    kind = error_type_for_status(code) if isinstance(code, int) else "api_error"
    return AnthropicError(kind, message)


def body_snippet(raw: bytes, secrets: tuple[str, ...]) -> str:
    """The start of a body, on one line, to say what came instead."""
    text = " ".join(raw[:200].decode("utf-8", "replace").split())
    text = scrub_secrets(text, *secrets)
    return (text + "...") if len(raw) > 200 else (text or "empty")


def note_no_finish_reason(model: str) -> None:
    """An answer ended without saying why: taken as `end_turn` and logged (the converter
    tags its run, `src/tasks/conversion/stream.py`)."""
    log.warning("the upstream answer has no finish_reason; taken as end_turn", upstream_model=model)


def check_stream_end(model: str, chunks: int, finished: bool, done: bool) -> None:
    """At a stream's end: raise if it was no answer (no chunk) or was cut short (neither a
    `finish_reason` nor `[DONE]`); note a missing `finish_reason` after `[DONE]`."""
    if not chunks:
        raise malformed(model, "an event stream without a single chunk")
    if finished:
        return
    if not done:
        raise malformed(
            model, "a stream that ended with neither a finish_reason nor [DONE] (cut short)"
        )
    note_no_finish_reason(model)
