"""oas: the Anthropic Messages API, answered by any model on OpenRouter, every request a
Prefect flow run."""

__version__ = "0.1.0"
