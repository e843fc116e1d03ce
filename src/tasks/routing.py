"""resolve-model: which upstream model answers the name the client asked for."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

import structlog

from src.core.settings import Settings
from src.tracking import step

_CLAUDE = re.compile(r"claude", re.IGNORECASE)

log = structlog.get_logger("oas.routing")


@dataclass(frozen=True, slots=True)
class Route:
    """Where a request goes: the client's model name, the upstream's, and why; and which
    models to try, in order, when the upstream one fails to answer."""

    client_model: str
    upstream_model: str
    alias: str | None = None
    fallbacks: tuple[str, ...] = ()

    @property
    def models(self) -> tuple[str, ...]:
        """The upstream model, then its fallbacks: the order of attempts."""
        return (self.upstream_model, *self.fallbacks)

    def answered_by(self, model: str) -> Route:
        """This route as it turned out: `model` (a fallback, maybe) answered."""
        return self if model == self.upstream_model else replace(self, upstream_model=model)

    @property
    def provider(self) -> str:
        """The provider part of an OpenRouter id (`anthropic` in `anthropic/claude-...`)."""
        return self.upstream_model.split("/", 1)[0] if "/" in self.upstream_model else ""


def map_model(name: str, settings: Settings) -> Route:
    """The route for `name`, with the fallbacks configured for its alias or model."""
    route = _primary(name, settings)
    fallbacks = settings.fallbacks_for(route.alias, route.upstream_model, route.client_model)
    fallbacks = tuple(dict.fromkeys(m for m in fallbacks if m != route.upstream_model))
    return replace(route, fallbacks=fallbacks) if fallbacks else route


def _primary(name: str, settings: Settings) -> Route:
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
    route = map_model(name, settings)
    # DEBUG: not for the terminal at INFO, but always in the run's Logs tab
    log.debug("model chosen", client_model=route.client_model,
              upstream_model=route.upstream_model, alias=route.alias,
              fallbacks=list(route.fallbacks) or None)
    return route
