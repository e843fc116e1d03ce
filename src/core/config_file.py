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
```
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator


class ConfigError(Exception):
    """The config file is missing, unreadable or says something `oas` cannot use."""


class ConfigFile(BaseModel):
    """The sections of the config file (all optional)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: alias (`big`, `small`), upstream model id or client model name -> models to try next
    fallbacks: dict[str, list[str]] = {}
    #: managed MCP servers; their shape is checked by `src.core.mcp_config`
    mcp_servers: list[dict[str, Any]] = []

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
        raise ConfigError(f"OAS_CONFIG: {path} must be a mapping of sections, "
                          f"not {type(data).__name__}")
    try:
        return ConfigFile.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
                             for e in exc.errors(include_url=False))
        raise ConfigError(f"OAS_CONFIG: {path}: {problems}") from None
