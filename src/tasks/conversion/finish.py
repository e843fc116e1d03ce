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
    "stop_sequence": "stop_sequence",
}


def stop_reason(finish_reason: str | None, has_tool_calls: bool) -> str:
    """Anthropic's `stop_reason` for an OpenAI `finish_reason`."""
    if has_tool_calls and finish_reason in (None, "stop", "tool_calls", "function_call"):
        return "tool_use"
    return _STOP_REASONS.get(finish_reason or "stop", "end_turn")


def anthropic_usage(usage: dict[str, Any] | None) -> dict[str, Any]:
    """Anthropic usage from OpenAI/OpenRouter usage.

    Anthropic counts cached input apart from `input_tokens`; OpenAI's `prompt_tokens`
    includes it, so cached reads and writes are taken out.
    """
    usage = usage or {}
    details = usage.get("prompt_tokens_details") or {}
    cache_read = int(details.get("cached_tokens") or 0)
    cache_write = int(details.get("cache_write_tokens") or usage.get("cache_creation_input_tokens") or 0)
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
