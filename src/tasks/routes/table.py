"""The `routes` section compiled into checks, and the choice of the first rule that holds.

Choosing costs a few attribute reads per rule: the rules are compiled once per config
into one function (a chain of `if`s), globs into regexes, and request facts are computed
only when a rule asks (`RequestFeatures`). The token count is the one costly fact: when
the first rule whose other conditions hold needs it, `choose` raises `NeedsTokens` and the
caller counts (off the event loop) and chooses again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from src.core.config_file import ConfigFile
from src.core.routes_config import RouteRule
from src.tasks.routes.features import RequestFeatures


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


def _conditions(index: int, rule: RouteRule, env: dict[str, Any]) -> list[str]:
    """Rule `index`'s conditions as Python expressions over `f` (a `RequestFeatures`),
    cheapest first, the token count last. Values are bound in `env`, never written into
    the source, so nothing from the config file is ever code."""
    when = rule.when
    out: list[str] = []
    if rule.model_matchers:
        names = []
        for j, match in enumerate(rule.model_matchers):
            env[f"glob_{index}_{j}"] = match
            names.append(f"glob_{index}_{j}(f.model) is not None")
        out.append("(" + " or ".join(names) + ")")
    if when.client is not None:
        env[f"clients_{index}"] = frozenset(
            [when.client] if isinstance(when.client, str) else when.client
        )
        out.append(f"f.client in clients_{index}")
    for name in ("stream", "thinking", "web_search", "images", "documents"):
        wanted = getattr(when, name)
        if wanted is not None:
            out.append(f"f.{name} is {bool(wanted)!r}")
    if when.tools is True:
        out.append("bool(f.tool_names)")
    elif when.tools is False:
        out.append("not f.tool_names")
    elif when.tools is not None:
        env[f"tools_{index}"] = frozenset(
            [when.tools] if isinstance(when.tools, str) else when.tools
        )
        out.append(f"not tools_{index}.isdisjoint(f.tool_names)")
    if when.input_tokens_over is not None:
        env[f"limit_{index}"] = int(when.input_tokens_over)
        out.append(f"tokens_over(f, limit_{index})")
    return out


def _tokens_over(f: RequestFeatures, limit: int) -> bool:
    if f.input_tokens is None:
        raise NeedsTokens
    return f.input_tokens > limit


def _compile(rules: list[RouteRule]) -> Callable[[RequestFeatures], int]:
    """One function that tries every rule in order and returns the first index that holds
    (-1: none): a chain of `if`s costs far less than a call per condition."""
    env: dict[str, Any] = {"tokens_over": _tokens_over}
    lines = ["def choose(f):"]
    for index, rule in enumerate(rules):
        lines.append(f"    if {' and '.join(_conditions(index, rule, env)) or 'True'}:")
        lines.append(f"        return {index}")
    lines.append("    return -1")
    exec("\n".join(lines), env)
    return env["choose"]


def _describe(rule: RouteRule) -> str:
    given = rule.when.model_dump(exclude_none=True)
    return ", ".join(f"{k}: {_words(v)}" for k, v in given.items()) or "always"


class RouteTable:
    """The rules of one config, compiled; `choose` is what runs per request."""

    __slots__ = ("_choose", "built", "needs_tokens", "rules")

    def __init__(self, rules: list[RouteRule]) -> None:
        self.rules = tuple((rule, _describe(rule)) for rule in rules)
        self._choose = _compile(rules)
        #: what the caller built from a decision, by (rule name, requested model): the
        #: same rule and name always give the same route under one config
        self.built: dict[tuple[str, str], Any] = {}
        #: whether any rule looks at the token count at all
        self.needs_tokens = any(r.when.input_tokens_over is not None for r in rules)

    def __bool__(self) -> bool:
        return bool(self.rules)

    def choose(self, features: RequestFeatures) -> Decision:
        """The first rule whose every condition holds (raises `NeedsTokens`, see above)."""
        index = self._choose(features)
        if index < 0:
            return Decision(None, "")
        rule, described = self.rules[index]
        return Decision(rule, described)

    def remember(self, key: tuple[str, str], value: Any) -> Any:
        """Keep `value` under `key` (bounded: requested names come from clients)."""
        if len(self.built) >= 4096:
            self.built.clear()
        self.built[key] = value
        return value


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
