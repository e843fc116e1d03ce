"""The `count-tokens` flow: the input tokens of a Messages request, without calling a model.

One task does the work (validate, map the model, convert, count); the flow tells the
dashboard which upstream model the count was made for and how much came from the cache.
"""

from __future__ import annotations

from typing import Any

from prefect import flow

from src.services import Services
from src.tasks.tokens import count_tokens
from src.tracking import annotate


@flow(name="count-tokens", persist_result=False, validate_parameters=False, log_prints=False)
async def count_tokens_flow(request: dict[str, Any], services: Services) -> dict[str, int]:
    """count-tokens -> `{"input_tokens": N}`, as Anthropic's count_tokens answers."""
    counted = await count_tokens(request, services.settings)
    annotate(
        tags=[f"upstream:{counted.upstream_model}"],
        upstream_model=counted.upstream_model,
        usage={"input_tokens": counted.input_tokens},
        token_parts=counted.parts,
        token_parts_reused=counted.reused,
    )
    return {"input_tokens": counted.input_tokens}
