"""The `routes` section compiled into checks, and the choice of the first rule that holds.

Choosing costs a few attribute reads per rule: conditions are closures made once per
config, globs are compiled regexes, and request facts are computed only when a rule asks
(`RequestFeatures`). The token count is the one costly fact: when the first rule whose
other conditions hold needs it, `choose` raises `NeedsTokens` and the caller counts
(off the event loop) and chooses again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from src.core.config_file import ConfigFile
from src.core.routes_config import RouteRule
from src.tasks.routes.features import RequestFeatures

Check = Callable[[RequestFeatures], bool]


class NeedsTokens(Exception):
    """A rule needs the request's input tokens to decide: count them, then choose again."""


@dataclass(frozen=True, slots=True)
class Decision:
    """The rule that matched (None: none did) and the conditions that held, as text."""

    rule: RouteRule | None
    matched: str


def _words(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list) and len(value) == 1:
        return str(value[0])
    if isinstance(value, list):
        return "[" + ", ".join(str(v) for v in value) + "]"
    return str(value)


def _flag(name: str, wanted: bool) -> Check:
    getter = getattr(RequestFeatures, name).fget
    return lambda f: getter(f) is wanted


def _tools(value: bool | str | list[str]) -> Check:
    if value is True:
        return lambda f: bool(f.tool_names)
    if value is False:
        return lambda f: not f.tool_names
    names = frozenset([value] if isinstance(value, str) else value)
    return lambda f: not names.isdisjoint(f.tool_names)


def _tokens_over(limit: int) -> Check:
    def check(f: RequestFeatures) -> bool:
        if f.input_tokens is None:
            raise NeedsTokens
        return f.input_tokens > limit
    return check


def _checks(rule: RouteRule) -> tuple[Check, ...]:
    """One check per condition, cheapest first; the token count always last."""
    when = rule.when
    checks: list[Check] = []
    if rule.model_matchers:
        matchers = rule.model_matchers
        checks.append(lambda f: any(m(f.model) for m in matchers))
    if when.client is not None:
        clients = frozenset([when.client] if isinstance(when.client, str) else when.client)
        checks.append(lambda f: f.client in clients)
    for name in ("stream", "thinking", "web_search", "images", "documents"):
        wanted = getattr(when, name)
        if wanted is not None:
            checks.append(_flag(name, wanted))
    if when.tools is not None:
        checks.append(_tools(when.tools))
    if when.input_tokens_over is not None:
        checks.append(_tokens_over(when.input_tokens_over))
    return tuple(checks)


def _describe(rule: RouteRule) -> str:
    given = rule.when.model_dump(exclude_none=True)
    return ", ".join(f"{k}: {_words(v)}" for k, v in given.items()) or "always"


class RouteTable:
    """The rules of one config, compiled; `choose` is what runs per request."""

    __slots__ = ("rules", "needs_tokens")

    def __init__(self, rules: list[RouteRule]) -> None:
        self.rules = tuple((rule, _checks(rule), _describe(rule)) for rule in rules)
        #: whether any rule looks at the token count at all
        self.needs_tokens = any(r.when.input_tokens_over is not None for r in rules)

    def __bool__(self) -> bool:
        return bool(self.rules)

    def choose(self, features: RequestFeatures) -> Decision:
        """The first rule whose every condition holds (raises `NeedsTokens`, see above)."""
        for rule, checks, described in self.rules:
            for check in checks:
                if not check(features):
                    break
            else:
                return Decision(rule, described)
        return Decision(None, "")


_cached: tuple[ConfigFile, RouteTable] | None = None


def route_table(config: ConfigFile) -> RouteTable:
    """The compiled rules of `config` (compiled once per loaded file, reused after)."""
    global _cached
    cached = _cached
    if cached is not None and cached[0] is config:
        return cached[1]
    table = RouteTable(config.routes)
    _cached = (config, table)
    return table
