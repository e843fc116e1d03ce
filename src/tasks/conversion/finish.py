"""Why a completion ended and what it cost, in Anthropic's terms."""

from __future__ import annotations

from typing import Any

_STOP_REASONS = {
    "stop": "end_turn",
    "end_turn": "end_turn",
    "length": "max_tokens",
    "max_tokens": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "tool_use": "tool_use",
    "content_filter": "refusal",
    "refusal": "refusal",
    "stop_sequence": "stop_sequence",
    "pause_turn": "pause_turn",
    "model_context_window_exceeded": "model_context_window_exceeded",
}

# `native_finish_reason`s (the provider's own words, which OpenRouter passes along) that
# say more than the normalized `finish_reason` does.
_NATIVE = {
    "stop_sequence": "stop_sequence",  # Anthropic
    "refusal": "refusal",  # Anthropic
    "pause_turn": "pause_turn",  # Anthropic (server tools)
    "model_context_window_exceeded": "model_context_window_exceeded",  # Anthropic
    "max_tokens": "max_tokens",
    "MAX_TOKENS": "max_tokens",  # Gemini
    "SAFETY": "refusal",  # Gemini
    "RECITATION": "refusal",
    "PROHIBITED_CONTENT": "refusal",
    "BLOCKLIST": "refusal",
    "SPII": "refusal",
    "IMAGE_SAFETY": "refusal",
    "content_filter": "refusal",
}


def stop_reason(finish_reason: str | None, has_tool_calls: bool) -> str:
    """Anthropic's `stop_reason` for an OpenAI `finish_reason`."""
    if has_tool_calls and finish_reason in (None, "stop", "tool_calls", "function_call"):
        return "tool_use"
    return _STOP_REASONS.get(finish_reason or "stop", "end_turn")


def stop_details(
    finish_reason: str | None,
    native_finish_reason: str | None,
    has_tool_calls: bool,
    matched_stop: Any = None,
    stop_sequences: list[str] | None = None,
) -> tuple[str, str | None]:
    """(`stop_reason`, `stop_sequence`) from everything the upstream said about the end.

    OpenRouter's `finish_reason` folds a matched stop sequence into `stop`. What is left to
    tell them apart: servers in the vLLM family put the matched string in the choice's
    `stop_reason` (SGLang: `matched_stop`), and Anthropic models report
    `native_finish_reason: "stop_sequence"`, without the string: then it is known only
    when the request had a single stop sequence.
    """
    native = _NATIVE.get(native_finish_reason or "")
    if native == "refusal" or finish_reason == "content_filter":
        return "refusal", None
    reason = stop_reason(finish_reason, has_tool_calls)
    if reason in ("max_tokens", "tool_use", "refusal"):
        return reason, None
    if native in ("max_tokens", "pause_turn", "model_context_window_exceeded"):
        return native, None
    if isinstance(matched_stop, str) and stop_sequences and matched_stop in stop_sequences:
        return "stop_sequence", matched_stop
    if native == "stop_sequence" or reason == "stop_sequence":
        only = stop_sequences[0] if stop_sequences and len(stop_sequences) == 1 else None
        return "stop_sequence", only
    return reason, None


def anthropic_usage(usage: dict[str, Any] | None) -> dict[str, Any]:
    """Anthropic usage from OpenAI/OpenRouter usage.

    Anthropic counts cached input apart from `input_tokens`; OpenAI's `prompt_tokens`
    includes it, so cached reads and writes are taken out.
    """
    usage = usage or {}
    details = usage.get("prompt_tokens_details") or {}
    cache_read = int(details.get("cached_tokens") or usage.get("cache_read_input_tokens") or 0)
    cache_write = int(
        details.get("cache_write_tokens") or usage.get("cache_creation_input_tokens") or 0
    )
    prompt = int(usage.get("prompt_tokens") or 0)
    return {
        "input_tokens": max(0, prompt - cache_read - cache_write),
        "output_tokens": int(usage.get("completion_tokens") or 0),
        "cache_creation_input_tokens": cache_write,
        "cache_read_input_tokens": cache_read,
    }


def usage_cost(usage: dict[str, Any] | None) -> float | None:
    """OpenRouter's cost in credits (USD) when it reports one."""
    if not usage:
        return None
    cost = usage.get("cost")
    return float(cost) if isinstance(cost, (int, float)) else None


def add_usage(first: dict[str, Any] | None, second: dict[str, Any] | None) -> dict[str, Any] | None:
    """Two upstream usages added up (numbers summed, nested details too): a server-tool
    loop calls the model several times for one answer, and each call is billed."""
    if not first:
        return second
    if not second:
        return first
    out: dict[str, Any] = dict(first)
    for key, value in second.items():
        mine = out.get(key)
        if isinstance(value, bool) or value is None:
            out.setdefault(key, value)
        elif isinstance(value, (int, float)) and isinstance(mine, (int, float)):
            out[key] = mine + value
        elif isinstance(value, dict) and isinstance(mine, dict):
            out[key] = add_usage(mine, value)
        else:
            out.setdefault(key, value)
    return out
