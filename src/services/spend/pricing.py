"""A request's cost from LiteLLM's price table, for upstreams that report none
(OpenRouter reports `usage.cost`; LiteLLM providers and plain OpenAI servers do not)."""

from __future__ import annotations

from typing import Any

import structlog

log = structlog.get_logger("oas.pricing")


def _table() -> dict[str, Any]:
    from src.services.tokenizer import litellm_module

    return litellm_module().model_cost


def price_from_table(model: str, input_tokens: int, output_tokens: int) -> float | None:
    """USD for these tokens of `model` (an OpenRouter id or a LiteLLM name), or None when
    the table does not know the model."""
    try:
        table = _table()
    except Exception:
        return None
    names = [model, f"openrouter/{model}"]
    if "/" in model:
        names.append(model.split("/", 1)[1])
    for name in names:
        entry = table.get(name)
        if isinstance(entry, dict) and "input_cost_per_token" in entry:
            return input_tokens * float(
                entry.get("input_cost_per_token") or 0
            ) + output_tokens * float(entry.get("output_cost_per_token") or 0)
    return None
