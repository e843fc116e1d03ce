"""resolve-model: which upstream model answers the name the client asked for."""

from __future__ import annotations

import re
from dataclasses import dataclass

from src.core.settings import Settings
from src.tracking import step

_CLAUDE = re.compile(r"claude", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Route:
    """Where a request goes: the client's model name, the upstream's, and why."""

    client_model: str
    upstream_model: str
    alias: str | None = None

    @property
    def provider(self) -> str:
        """The provider part of an OpenRouter id (`anthropic` in `anthropic/claude-...`)."""
        return self.upstream_model.split("/", 1)[0] if "/" in self.upstream_model else ""


def map_model(name: str, settings: Settings) -> Route:
    """Map `big`/`small`, Claude model names and OpenRouter ids to an upstream model.

    Claude names map by family whatever their version or date suffix: haiku to the small
    model, sonnet and opus (and any other Claude name) to the big one. A name with a `/`
    is an OpenRouter model id and passes through unchanged, as does any other name.
    """
    lowered = name.strip().lower()
    if lowered == "big":
        return Route(name, settings.big_model, "big")
    if lowered == "small":
        return Route(name, settings.small_model, "small")
    if "/" in lowered:
        return Route(name, name.strip())
    if _CLAUDE.search(lowered):
        if "haiku" in lowered:
            return Route(name, settings.small_model, "small")
        return Route(name, settings.big_model, "big")
    return Route(name, name.strip())


@step("resolve-model")
def resolve_model(name: str, settings: Settings) -> Route:
    """Task: the route for this request's model."""
    return map_model(name, settings)
