"""The `mcp_servers:` section of the OAS_CONFIG YAML file: MCP servers `oas` runs itself.

```yaml
mcp_servers:
  - name: files                       # [A-Za-z0-9_-], unique
    command: [npx, -y, "@modelcontextprotocol/server-filesystem", /srv/docs]
    env: {LOG_LEVEL: warn}            # added to a minimal environment; ${VAR} is expanded
    offer: on_request                 # on_request (default): requests that ask for it;
                                      # always: every request
  - name: tracker
    url: https://mcp.example.com/mcp  # Streamable HTTP; `transport: sse` for SSE
    headers: {Authorization: "Bearer ${TRACKER_TOKEN}"}
    allowed_tools: [search_issues, get_issue]
```

A request asks for `on_request` servers with the header `x-oas-mcp: files,tracker` (or
`*` for all), or with `"oas_mcp": ["files"]` in its body.

This module reads only its own section and ignores the others, so it can live beside
the file's other readers; the field is shaped to move into a shared `ConfigFile` model
as `mcp_servers: list[ManagedServerConfig] = []`.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class McpConfigError(Exception):
    """The `mcp_servers` section says something `oas` cannot use."""


def expand(value: str) -> str:
    """`${NAME}` from the environment (an unset variable is an error, not an empty string)."""

    def sub(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in os.environ:
            raise ValueError(f"environment variable {name} is not set")
        return os.environ[name]

    return _VAR.sub(sub, value)


class ManagedServerConfig(BaseModel):
    """One managed MCP server: a command to run (stdio) or a URL to connect to."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[A-Za-z0-9_-]{1,40}$")
    command: list[str] | None = None
    url: str | None = None
    transport: Literal["stdio", "streamable_http", "sse"] | None = None
    env: dict[str, str] = Field(default_factory=dict, repr=False)
    headers: dict[str, str] = Field(default_factory=dict, repr=False)
    cwd: str | None = None
    offer: Literal["on_request", "always"] = "on_request"
    allowed_tools: list[str] | None = None
    timeout: float = Field(30.0, gt=0)

    @field_validator("command", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        if isinstance(value, str):
            import shlex

            return shlex.split(value)
        return value

    @field_validator("env", "headers")
    @classmethod
    def _expand(cls, value: dict[str, str]) -> dict[str, str]:
        return {k: expand(str(v)) for k, v in value.items()}

    @model_validator(mode="after")
    def _one_way_in(self) -> ManagedServerConfig:
        if bool(self.command) == bool(self.url):
            raise ValueError("give either `command` (stdio) or `url`, not both or neither")
        if self.command and self.transport not in (None, "stdio"):
            raise ValueError("a `command` server speaks stdio")
        if self.url and self.transport == "stdio":
            raise ValueError("a `url` server speaks streamable_http or sse")
        return self


def parse_mcp_servers(data: Any, source: str = "OAS_CONFIG") -> list[ManagedServerConfig]:
    """The section's value (a list of servers), validated; names must be unique."""
    if data is None:
        return []
    if not isinstance(data, list):
        raise McpConfigError(f"{source}: mcp_servers must be a list of servers")
    servers: list[ManagedServerConfig] = []
    for position, item in enumerate(data):
        try:
            servers.append(ManagedServerConfig.model_validate(item))
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'server'}: {e['msg']}"
                for e in exc.errors(include_url=False)
            )
            raise McpConfigError(f"{source}: mcp_servers.{position}: {problems}") from None
    names = [s.name for s in servers]
    if len(set(names)) != len(names):
        raise McpConfigError(f"{source}: mcp_servers: names must be unique")
    return servers


def load_managed_servers(path: Path | str | None) -> list[ManagedServerConfig]:
    """The managed servers declared in the file at `path` (none without a file)."""
    if path is None or str(path) == "":
        return []
    path = Path(path).expanduser()
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise McpConfigError(f"OAS_CONFIG: cannot read {path}: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise McpConfigError(f"OAS_CONFIG: {path} is not valid YAML: {exc}") from None
    if data is None:
        return []
    if not isinstance(data, dict):
        raise McpConfigError(f"OAS_CONFIG: {path} must be a mapping of sections")
    return parse_mcp_servers(data.get("mcp_servers"), f"OAS_CONFIG {path}")
