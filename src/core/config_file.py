"""The YAML file named by `OAS_CONFIG`: what is too rich for one environment variable.

This module is the one reader of that file. Each section is a field of `ConfigFile`;
add a section by adding a field (with a default, so older files stay valid). An unknown
section or a value of the wrong shape stops the start with a message naming the file and
the key, rather than being ignored: a typo in a routing rule should not pass silently.

```yaml
fallbacks:                  # tried in order when the primary model fails to answer
  big: [openai/gpt-4o, google/gemini-2.5-pro]
  small: [openai/gpt-4o-mini]
  deepseek/deepseek-chat: [deepseek/deepseek-chat-v3.1]   # any upstream model id
models: {"claude-haiku-*": google/gemini-2.5-flash}      # see src/core/routes_config.py
routes: [{name: thinking, when: {thinking: true}, model: deepseek/deepseek-r1}]
clients: [{name: alice, key_env: ALICE_KEY, budget_usd: 50}]  # see src/core/clients.py
```

The file can be read again while the server runs (`SIGHUP`, `oas config reload`):
`load_config_file` either returns a whole new `ConfigFile` or raises, so a broken edit
never replaces working rules.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from src.core.clients import ClientEntry, ClientTable, client_key_values, unique_clients
from src.core.routes_config import ModelTable, RouteRule, check_models_table, unique_route_names


class ConfigError(Exception):
    """The config file is missing, unreadable or says something `oas` cannot use."""


class ConfigFile(BaseModel):
    """The sections of the config file (all optional)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: alias (`big`, `small`), upstream model id or client model name -> models to try next
    fallbacks: dict[str, list[str]] = {}
    #: managed MCP servers; their shape is checked by `src.core.mcp_config`
    mcp_servers: list[dict[str, Any]] = []
    #: requested model name (glob) -> upstream model, before OAS_BIG_MODEL/OAS_SMALL_MODEL
    models: dict[str, str] = {}
    #: routing rules, first match wins
    routes: list[RouteRule] = []
    #: named client keys, with optional monthly budgets
    clients: list[ClientEntry] = []

    _models: ModelTable = PrivateAttr(default_factory=lambda: ModelTable({}))
    _clients: ClientTable = PrivateAttr(default_factory=lambda: ClientTable([]))

    def model_post_init(self, context: object) -> None:
        self._models = ModelTable(self.models)
        self._clients = ClientTable(self.clients)

    @property
    def model_table(self) -> ModelTable:
        """The `models` section, globs compiled."""
        return self._models

    @property
    def client_table(self) -> ClientTable:
        """The `clients` section as key digests (no key is kept)."""
        return self._clients

    def client_key_values(self) -> list[str]:
        """The client keys this file gives in plain: for log masking."""
        return client_key_values(self.clients)

    @field_validator("models", mode="before")
    @classmethod
    def _models_table(cls, value: Any) -> Any:
        return check_models_table(value)

    @model_validator(mode="after")
    def _unique(self) -> ConfigFile:
        unique_route_names(self.routes)
        unique_clients(self.clients)
        return self

    @field_validator("fallbacks", mode="before")
    @classmethod
    def _lists(cls, value: Any) -> Any:
        # `big: openai/gpt-4o` is read as a one-model list.
        if isinstance(value, dict):
            return {k: [v] if isinstance(v, str) else v for k, v in value.items()}
        return value


def load_config_file(path: Path | str | None) -> ConfigFile:
    """The parsed file, or an empty `ConfigFile` when no path is given."""
    if path is None or str(path) == "":
        return ConfigFile()
    path = Path(path).expanduser()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"OAS_CONFIG: cannot read {path}: {exc.strerror or exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"OAS_CONFIG: {path} is not valid YAML: {exc}") from None
    if data is None:
        return ConfigFile()
    if not isinstance(data, dict):
        raise ConfigError(
            f"OAS_CONFIG: {path} must be a mapping of sections, not {type(data).__name__}"
        )
    try:
        return ConfigFile.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(_problem(e) for e in exc.errors(include_url=False))
        raise ConfigError(f"OAS_CONFIG: {path}: {problems}") from None


def _problem(error: Any) -> str:
    """One validation error as `key.path: what is wrong` (`routes.0.when.thinkin: unknown
    condition`)."""
    loc = [str(p) for p in error["loc"]]
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        if len(loc) == 1:
            message = "unknown section"
        elif len(loc) >= 2 and loc[-2] == "when":
            message = "unknown condition"
        else:
            message = "unknown key"
    elif error["type"] == "missing":
        message = "required"
    if not loc and message[:1].isalpha() and ":" in message.split(" ", 1)[0]:
        return message  # the message names its own key (duplicates)
    return f"{'.'.join(loc) or 'file'}: {message}"
