"""The `models` and `routes` sections of the `OAS_CONFIG` file: their shape, checked strictly.

```yaml
models:                                  # requested name (glob) -> upstream model
  "claude-haiku-*": google/gemini-2.5-flash
routes:                                  # first match wins; every condition must hold
  - name: thinking
    when: {thinking: true}
    model: deepseek/deepseek-r1
    fallbacks: [openai/o3]               # optional, instead of the `fallbacks` section's
    provider: {order: [deepinfra]}       # optional OpenRouter provider preferences
```

Globs are compiled here, once, at load: a route is chosen on every request and must cost
microseconds (src/tasks/routes/ does the matching).
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator

GlobMatch = Callable[[str], Any]


def compile_glob(pattern: str) -> GlobMatch:
    """A case-insensitive matcher for a shell-style glob (`claude-haiku-*`, `*opus*`)."""
    if not isinstance(pattern, str) or not pattern.strip():
        raise ValueError("a glob must be a non-empty string")
    if pattern.count("[") != pattern.count("]"):
        raise ValueError(f"bad glob {pattern!r}: unbalanced [ ]")
    try:
        return re.compile(fnmatch.translate(pattern.strip()), re.IGNORECASE).match
    except re.error as exc:
        raise ValueError(f"bad glob {pattern!r}: {exc}") from None


def _globs(value: Any) -> list[str]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items:
        raise ValueError("a glob or a non-empty list of globs")
    for item in items:
        compile_glob(item)
    return items


class When(BaseModel):
    """The conditions of a route; each one given must hold. Unknown ones are refused."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: glob (or list of globs) on the model name the client asked for
    model: str | list[str] | None = None
    #: the request asks for extended thinking (true) or does not (false)
    thinking: bool | None = None
    #: an image anywhere in the conversation (tool results included)
    images: bool | None = None
    #: a document (PDF, text) block anywhere in the conversation
    documents: bool | None = None
    #: true: the request offers any tool; a name (or list of names): it offers that tool
    tools: bool | str | list[str] | None = None
    #: the request carries Anthropic's web search server tool
    web_search: bool | None = None
    #: the request's input tokens, counted as `count_tokens` counts them, exceed this
    input_tokens_over: int | None = Field(None, ge=0)
    #: the request streams (true) or not (false)
    stream: bool | None = None
    #: a client name (or list of names) from the `clients` section
    client: str | list[str] | None = None

    @field_validator("model")
    @classmethod
    def _model_globs(cls, value: Any) -> Any:
        return None if value is None else _globs(value)

    @field_validator("tools", "client")
    @classmethod
    def _names(cls, value: Any) -> Any:
        if isinstance(value, list) and (
            not value or not all(isinstance(v, str) and v for v in value)
        ):
            raise ValueError("a name or a non-empty list of names")
        return value


class RouteRule(BaseModel):
    """One routing rule: a name for the dashboard, conditions, and where it sends."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=80, pattern=r"^[A-Za-z0-9_.:-]+$")
    when: When = When()
    model: str = Field(min_length=1)
    fallbacks: list[str] | None = None
    provider: dict[str, Any] | None = None

    _model_match: tuple[GlobMatch, ...] = PrivateAttr(default=())

    @field_validator("fallbacks", mode="before")
    @classmethod
    def _one_or_list(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    def model_post_init(self, context: object) -> None:
        globs = self.when.model
        if globs is not None:
            self._model_match = tuple(
                compile_glob(g) for g in ([globs] if isinstance(globs, str) else globs)
            )

    @property
    def model_matchers(self) -> tuple[GlobMatch, ...]:
        """Compiled globs of `when.model` (empty: any model)."""
        return self._model_match


def check_models_table(value: Any) -> Any:
    """`models:` is a mapping of glob -> upstream model id, each glob valid."""
    if not isinstance(value, dict):
        return value
    for glob, target in value.items():
        compile_glob(str(glob))
        if not isinstance(target, str) or not target.strip():
            raise ValueError(f"{glob}: the upstream model must be a non-empty string")
    return value


class ModelTable:
    """The `models` section compiled: the first glob (in file order) that matches wins."""

    __slots__ = ("entries",)

    def __init__(self, table: dict[str, str]) -> None:
        self.entries = tuple(
            (glob, compile_glob(glob), target.strip()) for glob, target in table.items()
        )

    def lookup(self, name: str) -> tuple[str, str] | None:
        """(glob, upstream model) for a requested name, or None."""
        for glob, match, target in self.entries:
            if match(name):
                return glob, target
        return None


def unique_route_names(routes: list[RouteRule]) -> list[RouteRule]:
    """Refuse two routes with one name: the `route:` tag would not say which matched."""
    seen: dict[str, int] = {}
    for index, route in enumerate(routes):
        if route.name in seen:
            raise ValueError(
                f"routes.{index}.name: {route.name!r} is also routes.{seen[route.name]}"
            )
        seen[route.name] = index
    return routes
