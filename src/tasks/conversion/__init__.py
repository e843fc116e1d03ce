"""Conversion between Anthropic Messages and OpenAI chat completions (OpenRouter's dialect)."""
