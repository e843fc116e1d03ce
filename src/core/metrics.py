"""In-process counters: per model and per tool, since the process started.

Tasks add to them; `/tool-metrics`, `/health/detailed` and `/metrics` read them.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class ModelCounters:
    requests: int = 0
    errors: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_input_tokens: int = 0
    cache_creation_input_tokens: int = 0
    cost: float = 0.0


@dataclass
class ToolCounters:
    """Per tool name: calls the models made, `is_error` results the client sent back,
    calls whose arguments had to be repaired, and calls whose arguments stayed invalid."""

    calls: int = 0
    errors: int = 0
    repaired: int = 0
    invalid: int = 0


@dataclass
class Metrics:
    models: dict[str, ModelCounters] = field(default_factory=lambda: defaultdict(ModelCounters))
    tools: dict[str, ToolCounters] = field(default_factory=lambda: defaultdict(ToolCounters))

    def record_usage(self, model: str, usage: dict[str, Any], cost: float | None) -> None:
        counters = self.models[model]
        counters.requests += 1
        counters.input_tokens += int(usage.get("input_tokens") or 0)
        counters.output_tokens += int(usage.get("output_tokens") or 0)
        counters.cache_read_input_tokens += int(usage.get("cache_read_input_tokens") or 0)
        counters.cache_creation_input_tokens += int(usage.get("cache_creation_input_tokens") or 0)
        counters.cost += cost or 0.0

    def record_error(self, model: str) -> None:
        counters = self.models[model]
        counters.requests += 1
        counters.errors += 1

    def record_tool_calls(self, names: list[str]) -> None:
        for name in names:
            self.tools[name].calls += 1

    def record_tool_result_errors(self, names: list[str]) -> None:
        """Tool results the client returned with `is_error: true`."""
        for name in names:
            self.tools[name].errors += 1

    def record_tool_arguments(self, name: str, *, repaired: bool, invalid: bool) -> None:
        """A tool call whose arguments were repaired, or did not fit the tool's schema."""
        counters = self.tools[name]
        counters.repaired += int(repaired)
        counters.invalid += int(invalid)

    def snapshot(self) -> dict[str, Any]:
        return {
            "models": {name: asdict(c) for name, c in self.models.items()},
            "tools": {name: asdict(c) for name, c in self.tools.items()},
        }


metrics = Metrics()
