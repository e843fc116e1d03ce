"""The environment of a process `oas` starts that is not `oas` itself.

PostgreSQL, the Prefect server and managed MCP servers run code `oas` does not control
(`COPY x FROM PROGRAM 'env'` is one SQL statement away), so none of them inherits the
environment of `oas`: each gets one built here from a short list of harmless variables
plus what its caller names for it. A variable is left out, whatever its name, when its
value is a secret `oas` knows (`src.core.secrets`). Sandboxed commands build theirs from
nothing (`src.sandbox.isolation.clean_env`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from src.core import secrets

#: what a program needs to run, find its files and speak the right language
PASSED = (
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "SHELL",
    "LANG",
    "LANGUAGE",
    "LC_ALL",
    "LC_CTYPE",
    "TZ",
    "TMPDIR",
    "TERM",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "VIRTUAL_ENV",
)
#: never passed, even when a caller names them (they belong to `oas` alone)
SECRET_NAMES = frozenset(
    {
        "OPENROUTER_API_KEY",
        "OAS_API_KEYS",
        "ANTHROPIC_API_KEY",
        "ANTHROPIC_AUTH_TOKEN",
        "OPENAI_API_KEY",
    }
)


def child_env(
    extra: Mapping[str, str] | None = None,
    *,
    prefixes: tuple[str, ...] = (),
    allow_secrets: bool = False,
) -> dict[str, str]:
    """`PASSED` variables, those starting with `prefixes`, then `extra` on top.

    Variables named in `SECRET_NAMES` or holding a known secret value are dropped, except
    from `extra` when `allow_secrets` says a configuration named them for this child (a
    managed MCP server's own token).
    """
    known = secrets.known()
    env = {
        name: value
        for name, value in os.environ.items()
        if (name in PASSED or name.startswith(prefixes))
        and name not in SECRET_NAMES
        and value not in known
    }
    for name, value in (extra or {}).items():
        if allow_secrets or (name not in SECRET_NAMES and value not in known):
            env[name] = value
    return env


def forget_client_secrets(keep: tuple[str, ...] = ("OPENROUTER_API_KEY",)) -> list[str]:
    """Take client keys and MCP tokens out of this process's environment, once read.

    What `oas` starts without an environment of its own inherits this one: Prefect's
    runner starts each flow run (a replay) as a copy of `oas`, which needs the upstream
    key (in `keep`) and nothing else secret. Returns the names taken out.
    """
    known = secrets.known()
    gone = [
        name
        for name, value in os.environ.items()
        if name not in keep and (name in SECRET_NAMES or value in known)
    ]
    for name in gone:
        del os.environ[name]
    return gone
