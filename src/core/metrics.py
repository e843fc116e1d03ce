"""In-process counters: per model, per tool and per request, since the process started.

Tasks add usage and tool counts; coordinators add one observation per finished request
(outcome, latency, time to first byte, error type). `/tool-metrics` reads the per-model
and per-tool counters as JSON; `/metrics` renders everything in Prometheus' text format
through prometheus-client. Label values stay bounded: requests are labelled by flow,
mode and outcome, never by anything a client can make up; model and tool names (which a
client does choose) are capped at `MAX_LABEL_VALUES` distinct values, the rest counted as
`other`.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

#: Prometheus' classic text format, which every scraper version accepts.
PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

MAX_LABEL_VALUES = 500
OTHER = "other"

# Seconds. Total latency spans a validation error (ms) to a long stream (minutes).
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)
FIRST_BYTE_BUCKETS = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1,
    2.5,
    5,
    10,
    30,
    60,
)


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
    #: tool results the client sent back, and how many of them had `is_error`
    results: int = 0
    errors: int = 0
    repaired: int = 0
    invalid: int = 0


class _Capped(dict[str, Any]):
    """A defaultdict whose keys stop growing at `MAX_LABEL_VALUES` (the rest go to `other`)."""

    def __init__(self, factory: type) -> None:
        super().__init__()
        self.factory = factory

    def __missing__(self, key: str) -> Any:
        if len(self) >= MAX_LABEL_VALUES and key != OTHER:
            return self[OTHER]
        value = self[key] = self.factory()
        return value


@dataclass
class Metrics:
    models: dict[str, ModelCounters] = field(default_factory=lambda: _Capped(ModelCounters))
    tools: dict[str, ToolCounters] = field(default_factory=lambda: _Capped(ToolCounters))
    started: float = field(default_factory=time.time)
    registry: CollectorRegistry = field(
        default_factory=lambda: CollectorRegistry(auto_describe=True)
    )

    def __post_init__(self) -> None:
        self.requests = Counter(
            "oas_requests",
            "Requests answered, by flow, mode and outcome.",
            ["flow", "mode", "outcome"],
            registry=self.registry,
        )
        self.errors = Counter(
            "oas_errors",
            "Requests that ended in an error, by flow and Anthropic error type.",
            ["flow", "type"],
            registry=self.registry,
        )
        self.upstream_errors = Counter(
            "oas_upstream_errors",
            "Failures of the upstream (call or stream), by error type.",
            ["type"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "oas_request_duration_seconds",
            "Total time from request to the last byte.",
            ["flow", "mode", "outcome"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.first_byte = Histogram(
            "oas_time_to_first_byte_seconds",
            "Time from request to the first byte of the answer "
            "(the whole answer when not streamed).",
            ["flow", "mode"],
            buckets=FIRST_BYTE_BUCKETS,
            registry=self.registry,
        )
        self.first_token = Histogram(
            "oas_time_to_first_token_seconds",
            "Time from request to the upstream's first token.",
            ["mode"],
            buckets=FIRST_BYTE_BUCKETS,
            registry=self.registry,
        )
        self.spend = Counter(
            "oas_spend_usd",
            "What requests cost (USD), by named client and upstream model: "
            "the upstream's reported cost, or LiteLLM's price table when it reports none.",
            ["client", "model"],
            registry=self.registry,
        )
        self.registry.register(_CounterCollector(self))

    # ---- what tasks report --------------------------------------------------------------

    def record_usage(self, model: str, usage: dict[str, Any], cost: float | None) -> None:
        counters = self.models[model]
        counters.requests += 1
        counters.input_tokens += int(usage.get("input_tokens") or 0)
        counters.output_tokens += int(usage.get("output_tokens") or 0)
        counters.cache_read_input_tokens += int(usage.get("cache_read_input_tokens") or 0)
        counters.cache_creation_input_tokens += int(usage.get("cache_creation_input_tokens") or 0)
        counters.cost += cost or 0.0

    def record_spend(self, client: str, model: str, cost: float) -> None:
        """Spend of one request (client names come from the config file: bounded)."""
        if model not in self.models:
            model = OTHER
        self.spend.labels(client, model).inc(max(cost, 0.0))

    def record_error(self, model: str) -> None:
        counters = self.models[model]
        counters.requests += 1
        counters.errors += 1

    def record_tool_calls(self, names: list[str]) -> None:
        for name in names:
            self.tools[name].calls += 1

    def record_tool_results(self, results: list[tuple[str, bool]]) -> None:
        """Tool results a client returned: (tool name, whether it was an error)."""
        for name, is_error in results:
            counters = self.tools[name]
            counters.results += 1
            counters.errors += int(is_error)

    def record_tool_arguments(self, name: str, *, repaired: bool, invalid: bool) -> None:
        """A tool call whose arguments were repaired, or did not fit the tool's schema."""
        counters = self.tools[name]
        counters.repaired += int(repaired)
        counters.invalid += int(invalid)

    # ---- what coordinators report --------------------------------------------------------

    def record_request(
        self,
        *,
        flow: str,
        mode: str,
        outcome: str,
        duration: float,
        first_byte: float | None = None,
        first_token: float | None = None,
        error_type: str | None = None,
        upstream_error: bool = False,
    ) -> None:
        """One finished request (all times in seconds)."""
        self.requests.labels(flow, mode, outcome).inc()
        self.latency.labels(flow, mode, outcome).observe(duration)
        if first_byte is not None:
            self.first_byte.labels(flow, mode).observe(first_byte)
        if first_token is not None:
            self.first_token.labels(mode).observe(first_token)
        if error_type is not None:
            self.errors.labels(flow, error_type).inc()
            if upstream_error:
                self.upstream_errors.labels(error_type).inc()

    # ---- readers -----------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        return {
            "models": {name: asdict(c) for name, c in list(self.models.items())},
            "tools": {name: asdict(c) for name, c in list(self.tools.items())},
        }

    def prometheus_text(self, tracking: Mapping[str, Any] | None = None) -> bytes:
        """Everything in Prometheus' text format; `tracking` adds the recorder's counters."""
        text = generate_latest(self.registry)
        if tracking is not None:
            extra = CollectorRegistry(auto_describe=False)
            extra.register(_TrackingCollector(tracking))
            text += generate_latest(extra)
        return text


class _CounterCollector(Collector):
    """The per-model and per-tool counters, read at scrape time (no second bookkeeping)."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        m = self.metrics
        models = list(m.models.items())
        tools = list(m.tools.items())
        requests = CounterMetricFamily(
            "oas_model_requests", "Upstream requests per model.", labels=["model"]
        )
        errors = CounterMetricFamily(
            "oas_model_errors", "Failed upstream requests per model.", labels=["model"]
        )
        tokens = CounterMetricFamily(
            "oas_tokens", "Tokens per model and kind.", labels=["model", "kind"]
        )
        cost = CounterMetricFamily(
            "oas_cost_usd", "Cost the upstream reported, per model (USD).", labels=["model"]
        )
        for name, c in models:
            requests.add_metric([name], c.requests)
            errors.add_metric([name], c.errors)
            tokens.add_metric([name, "input"], c.input_tokens)
            tokens.add_metric([name, "output"], c.output_tokens)
            tokens.add_metric([name, "cache_read"], c.cache_read_input_tokens)
            tokens.add_metric([name, "cache_creation"], c.cache_creation_input_tokens)
            cost.add_metric([name], c.cost)
        yield from (requests, errors, tokens, cost)
        families = {
            "calls": CounterMetricFamily(
                "oas_tool_calls", "Tool calls the models made.", labels=["tool"]
            ),
            "results": CounterMetricFamily(
                "oas_tool_results", "Tool results clients returned.", labels=["tool"]
            ),
            "errors": CounterMetricFamily(
                "oas_tool_result_errors", "Tool results returned with is_error.", labels=["tool"]
            ),
            "repaired": CounterMetricFamily(
                "oas_tool_arguments_repaired", "Tool-call arguments repaired.", labels=["tool"]
            ),
            "invalid": CounterMetricFamily(
                "oas_tool_arguments_invalid",
                "Tool-call arguments that stayed invalid.",
                labels=["tool"],
            ),
        }
        for name, t in tools:
            for key, family in families.items():
                family.add_metric([name], getattr(t, key))
        yield from families.values()
        start = GaugeMetricFamily(
            "oas_start_time_seconds", "When this process started (Unix time)."
        )
        start.add_metric([], m.started)
        yield start


_TRACKING_COUNTERS = {
    "tracked": "Requests recorded as Prefect flow runs.",
    "untracked": "Requests served without a flow run (Prefect down, slow or tracking off).",
    "late": "Requests recorded late, in one call, after a burst.",
    "api_errors": "Prefect API calls that failed.",
}


class _TrackingCollector(Collector):
    def __init__(self, stats: Mapping[str, Any]) -> None:
        self.stats = stats

    def collect(self) -> Iterator[Metric]:
        for key, doc in _TRACKING_COUNTERS.items():
            family = CounterMetricFamily(f"oas_runs_{key}", doc)
            family.add_metric([], float(self.stats.get(key) or 0))
            yield family
        up = GaugeMetricFamily("oas_prefect_up", "1 while the Prefect API answers.")
        up.add_metric([], 1.0 if self.stats.get("prefect_up") else 0.0)
        yield up
        pending = GaugeMetricFamily(
            "oas_runs_pending", "Runs handed to the recorder, not yet written."
        )
        pending.add_metric([], float(self.stats.get("pending") or 0))
        yield pending


metrics = Metrics()
