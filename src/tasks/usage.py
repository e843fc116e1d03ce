"""record-usage: what a request cost, for the dashboard and the process's counters."""

from __future__ import annotations

from typing import Any

from src.core.metrics import metrics
from src.tasks.conversion.finish import usage_cost
from src.tasks.routing import Route
from src.tracking import annotate, step


@step("record-usage")
def record_usage(
    route: Route,
    usage: dict[str, Any],
    raw_usage: dict[str, Any] | None,
    stop_reason: str | None,
    tool_calls: list[str],
) -> dict[str, Any]:
    """Task: add this request to the counters and to its flow run's summary."""
    cost = usage_cost(raw_usage)
    metrics.record_usage(route.upstream_model, usage, cost)
    metrics.record_tool_calls(tool_calls)
    summary = {"usage": usage, "cost": cost, "stop_reason": stop_reason, "tool_calls": tool_calls}
    annotate(usage=usage, cost=cost, stop_reason=stop_reason, tool_calls=tool_calls)
    return summary
