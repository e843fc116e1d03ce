"""resolve-model: which upstream model answers the name the client asked for, and why.

In order: the first rule of the `routes` section whose conditions all hold (tag
`route:<name>`), else the `models` table (`route:models`), else the built-in mapping
(`route:default`: `big`/`small`, Claude names by family, `/` ids passed through).
The client still sees the model name it asked for; only the upstream changes.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, replace
from typing import Any

import structlog

from src.core.settings import Settings
from src.tasks.routes import NeedsTokens, RequestFeatures, route_table
from src.tracking import annotate, step

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
    #: what chose the model: a rule's name, `models` or `default`
    rule: str = "default"
    #: why, in words: the conditions that held, the glob that matched
    matched: str = ""
    #: OpenRouter provider preferences of the rule (None: OAS_PROVIDER)
    provider_prefs: dict[str, Any] | None = None

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

    @property
    def explanation(self) -> str:
        """`thinking (thinking: true)`: the rule and why, for the run's summary."""
        matched = self.matched
        if not matched and self.rule == "default":
            matched = (
                f"{self.client_model.strip()} -> {self.alias}" if self.alias else "passed through"
            )
        return f"{self.rule} ({matched})" if matched else self.rule


def map_model(name: str, settings: Settings) -> Route:
    """The route for `name` by the `models` table or the built-in mapping (no rules:
    `count_tokens` counts with this model), with the fallbacks configured for it."""
    found = settings.config.model_table.lookup(name.strip())
    if found is not None:
        glob, target = found
        route = replace(
            _primary(target, settings), client_model=name, rule="models", matched=f"model: {glob}"
        )
    else:
        route = _primary(name, settings)
    return _with_fallbacks(route, settings)


def choose_route(
    body: dict[str, Any],
    settings: Settings,
    client: str | None = None,
    input_tokens: int | None = None,
) -> Route:
    """The route for a whole request (raises `NeedsTokens` if a rule needs the count and
    `input_tokens` is None)."""
    name = str(body.get("model") or "")
    table = route_table(settings.config)
    if not table:
        return map_model(name, settings)
    decision = table.choose(RequestFeatures(body, client, input_tokens))
    rule = decision.rule
    if rule is None:
        return map_model(name, settings)
    built = table.built.get((rule.name, name))
    if built is not None:
        return built
    target = _primary(rule.model, settings)
    fallbacks: tuple[str, ...] | list[str] = (
        rule.fallbacks
        if rule.fallbacks is not None
        else settings.fallbacks_for(target.alias, target.upstream_model, name)
    )
    return table.remember(
        (rule.name, name),
        Route(
            name,
            target.upstream_model,
            target.alias,
            tuple(m for m in dict.fromkeys(fallbacks) if m != target.upstream_model),
            rule.name,
            decision.matched,
            rule.provider,
        ),
    )


async def route_request(
    body: dict[str, Any], settings: Settings, client: str | None = None
) -> Route:
    """`choose_route`, counting the input tokens (in a worker thread) only if a rule
    needs them, exactly as `count_tokens` counts."""
    try:
        return choose_route(body, settings, client)
    except NeedsTokens:
        from src.tasks.tokens import count_request_tokens

        counted = await asyncio.to_thread(count_request_tokens, body, settings)
        return choose_route(body, settings, client, counted.input_tokens)


def _with_fallbacks(route: Route, settings: Settings) -> Route:
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
async def resolve_model(
    body: dict[str, Any], settings: Settings, client: str | None = None
) -> Route:
    """Task: the route for this request; the run is tagged `route:<rule>` and its summary
    says which conditions matched."""
    route = await route_request(body, settings, client)
    annotate(tags=[f"route:{route.rule}"], route=route.explanation)
    # DEBUG: not for the terminal at INFO, but always in the run's Logs tab
    log.debug(
        "model chosen",
        client_model=route.client_model,
        upstream_model=route.upstream_model,
        alias=route.alias,
        rule=route.rule,
        fallbacks=list(route.fallbacks) or None,
    )
    return route
