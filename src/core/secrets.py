"""The secret values this process was configured with, known in one place.

Logs mask them wherever they appear (not only `sk-` shapes), and the environments built
for child processes (`src.core.child_env`) leave out every variable that holds one.
Filled once at start from the settings and the OAS_CONFIG file: the upstream key, the
client keys, the MCP servers' header and environment values.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from src.core.settings import Settings

#: shorter values are no secret worth mangling every log line for (and would mask words)
MIN_LENGTH = 8

_known: frozenset[str] = frozenset()


def remember(*values: str | None) -> None:
    """Add secret values (short or empty ones are ignored)."""
    global _known
    _known = _known | {v for v in values if v and len(v) >= MIN_LENGTH}


def known() -> frozenset[str]:
    """Every secret value remembered so far."""
    return _known


def remember_from_settings(settings: Settings) -> None:
    """The upstream key, client keys and managed MCP servers' tokens of `settings`."""
    key = settings.openrouter_api_key
    remember(
        key.get_secret_value() if key else None, *(k.get_secret_value() for k in settings.api_keys)
    )
    remember(*client_keys_in_config(settings.config_file))
    try:
        from src.core.mcp_config import load_managed_servers

        servers = load_managed_servers(settings.config_file)
    except Exception:
        return
    for server in servers:
        remember(*server.headers.values(), *server.env.values())
        # "Bearer <token>": the token alone may show up too
        remember(*(v.split(" ", 1)[1] for v in server.headers.values() if " " in v))


def client_keys_in_config(path: Path | str | None) -> list[str]:
    """Every string under a `key`, `keys`, `token` or `secret` field of the OAS_CONFIG
    file's `clients:` section (named client keys), whatever shape that section takes."""
    if not path:
        return []
    try:
        import yaml

        data = yaml.safe_load(Path(path).expanduser().read_text())
    except Exception:
        return []
    found: list[str] = []

    def walk(value: Any, secret: bool) -> None:
        if isinstance(value, str) and secret:
            found.append(value)
        elif isinstance(value, dict):
            for name, inner in value.items():
                walk(inner, secret or any(w in str(name).lower() for w in _SECRET_FIELDS))
        elif isinstance(value, list):
            for inner in value:
                walk(inner, secret)

    walk(data.get("clients") if isinstance(data, dict) else None, False)
    return found


_SECRET_FIELDS = ("key", "token", "secret", "password")
