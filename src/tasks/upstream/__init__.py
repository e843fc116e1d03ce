"""The seam to model backends: an OpenAI-compatible HTTP upstream (default) or LiteLLM."""

from src.tasks.upstream.base import Upstream, UpstreamStream
from src.tasks.upstream.calls import call_upstream, open_upstream_stream

__all__ = ["Upstream", "UpstreamStream", "call_upstream", "open_upstream_stream"]
