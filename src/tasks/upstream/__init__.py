"""The seam to model backends: an OpenAI-compatible HTTP upstream (default) or LiteLLM,
behind the same guards (concurrency slots, first-byte deadline), retries and fallbacks."""

from src.services.upstream.base import Upstream, UpstreamStream
from src.tasks.upstream.calls import call_upstream, open_upstream_stream
from src.tasks.upstream.retry import Attempts, RetryPolicy

__all__ = [
    "Attempts",
    "RetryPolicy",
    "Upstream",
    "UpstreamStream",
    "call_upstream",
    "open_upstream_stream",
]
