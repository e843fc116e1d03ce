"""The LiteLLM backend, for providers that do not speak OpenAI's dialect.

LiteLLM is imported on first use (it takes seconds); its streaming path costs about six
times the default backend's CPU per back-to-back chunk (65 against 11 µs; through LiteLLM's
stream wrapper it was 350), so it is chosen by configuration, not by default.
Model ids go to LiteLLM as `openrouter/<id>` against `OPENROUTER_BASE_URL` (LiteLLM's
OpenRouter provider speaks to any OpenAI-compatible server).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from typing import Any

from src.core.errors import AnthropicError, client_status, error_type_for_status, scrub_secrets
from src.core.settings import Settings
from src.services.upstream.errors import (
    RETRYABLE_STATUSES,
    body_snippet,
    check_stream_end,
    connection_error,
    malformed,
    timeout_error,
)

#: LiteLLM's words when a 200's body is not JSON (it calls that a 500): a 502 here, as the
#: default backend says it
_NOT_JSON = "Unable to get json response"
_UNREADABLE_CHUNK = "Got unexpected response from OpenRouter"


def _load_litellm() -> Any:
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    litellm.telemetry = False
    litellm.suppress_debug_info = True
    return litellm


def _error(exc: Exception, model: str, key: str = "") -> AnthropicError:
    """LiteLLM's exception as an Anthropic error, classified like the default backend's."""
    kind = type(exc).__name__
    if "Timeout" in kind:
        return timeout_error(model, "LiteLLM timed out", None)
    if kind == "APIConnectionError":
        return connection_error(model, exc, "(LiteLLM)")
    try:
        status = int(getattr(exc, "status_code", None) or 500)
    except (TypeError, ValueError):
        status = 500
    message = getattr(exc, "message", None) or str(exc)
    if _UNREADABLE_CHUNK in message:  # LiteLLM calls it a 400: the client sent nothing wrong
        return malformed(model, "a stream chunk that is not a chat completion chunk")
    if _NOT_JSON in message:
        body = message.partition("Original Response:")[2].strip().encode()
        return malformed(model, f"a body that is not JSON ({body_snippet(body, (key,))})")
    headers = getattr(getattr(exc, "response", None), "headers", None) or {}
    return AnthropicError(
        error_type_for_status(status),
        scrub_secrets(f"{message} [upstream model {model}]", key),
        status=client_status(status),
        retry_after=headers.get("retry-after") if hasattr(headers, "get") else None,
        upstream_model=model,
        retryable=status in RETRYABLE_STATUSES,
    )


class LiteLLMStream:
    """LiteLLM's stream, read from its OpenRouter chunk parser (`completion_stream`), every
    chunk as the upstream sent it. LiteLLM's own stream wrapper drops a chunk that carries
    only `reasoning_details` (the signature of a thinking block) and makes up a closing
    `stop` chunk for a body that held none (an HTML page, an empty body). So the end is
    judged here as by the default backend: no chunk, or neither a `finish_reason` nor
    `[DONE]`, is a 502, never an empty success."""

    def __init__(self, stream: Any, model: str, key: str = "") -> None:
        self.stream = stream
        self.model = model
        self.key = key

    async def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        source = getattr(self.stream, "completion_stream", None) or self.stream
        chunks, finished, done = 0, False, False
        try:
            async for chunk in source:
                if isinstance(chunk, dict):  # the parser's mark of `[DONE]`
                    done = done or bool(chunk.get("is_finished"))
                    continue
                data = chunk.model_dump(exclude_none=True)
                for choice in data.get("choices") or ():
                    finished = finished or bool(choice.get("finish_reason"))
                chunks += 1
                yield data
        except AnthropicError:
            raise
        except Exception as exc:
            raise _error(exc, self.model, self.key) from None
        check_stream_end(self.model, chunks, finished, done)

    async def aclose(self) -> None:
        close = getattr(self.stream, "aclose", None)
        if close is not None:
            await close()


class LiteLLMUpstream:
    name = "litellm"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.litellm = _load_litellm()

    def _args(self, body: dict[str, Any]) -> dict[str, Any]:
        args = {k: v for k, v in body.items() if k not in ("usage", "stream_options")}
        args["model"] = f"openrouter/{body['model']}"
        args["api_base"] = self.settings.openrouter_base_url
        args["api_key"] = self.settings.upstream_key or "none"
        args["timeout"] = max(self.settings.read_timeout, self.settings.first_byte_timeout)
        if body.get("stream"):
            args["stream_options"] = {"include_usage": True}
        return args

    async def complete(self, body: dict[str, Any]) -> dict[str, Any]:
        try:
            response = await self.litellm.acompletion(**self._args(body))
        except Exception as exc:
            raise _error(exc, str(body.get("model")), self.settings.upstream_key) from None
        completion: dict[str, Any] = response.model_dump(exclude_none=True)
        for choice in completion.get("choices") or ():
            # LiteLLM moves OpenRouter's `reasoning_details` (a thinking block's signature)
            # aside: back where the converter, and OpenRouter's answer, have them
            message = choice.get("message") or {}
            for name, value in (message.pop("provider_specific_fields", None) or {}).items():
                message.setdefault(name, value)
        return completion

    async def open_stream(self, body: dict[str, Any]) -> LiteLLMStream:
        try:
            stream = await self.litellm.acompletion(**self._args(body))
        except Exception as exc:
            raise _error(exc, str(body.get("model")), self.settings.upstream_key) from None
        model = str(body.get("model"))
        headers = (getattr(stream, "_hidden_params", None) or {}).get("additional_headers") or {}
        kind = str(headers.get("llm_provider-content-type") or "").split(";")[0].strip()
        if kind and kind.lower() not in ("text/event-stream", "application/json"):
            # (an error in JSON is LiteLLM's to raise as the stream is read)
            await LiteLLMStream(stream, model).aclose()
            raise malformed(model, f"a {kind} body where an event stream was asked for")
        return LiteLLMStream(stream, model, self.settings.upstream_key)

    async def aclose(self) -> None:
        return None
