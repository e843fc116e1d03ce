"""Named clients: who sent a request (by its key), and the budget that client has.

```yaml
clients:
  - name: alice
    key_sha256: 9f86d0...        # sha256 of the key, hex: the file need not hold the key
    budget_usd: 50               # per calendar month, UTC; optional
  - name: bob
    key_env: BOB_OAS_KEY         # the key is in this environment variable
  - name: ci
    key: ci-key-...              # the key itself
```

Only the SHA-256 digest of each key is kept in memory; a supplied key is hashed and
compared with every digest in constant time (no early exit), so the time taken does not
say which client, if any, matched.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator


class ClientEntry(BaseModel):
    """One client as the file says it: a name, exactly one way to give its key, a budget."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.@-]+$")
    key: SecretStr | None = None
    key_sha256: str | None = Field(None, pattern=r"^[0-9a-fA-F]{64}$")
    key_env: str | None = Field(None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    budget_usd: float | None = Field(None, gt=0)

    @model_validator(mode="after")
    def _one_key(self) -> ClientEntry:
        given = [k for k in ("key", "key_sha256", "key_env") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of key, key_sha256, key_env")
        if self.key is not None and not self.key.get_secret_value().strip():
            raise ValueError("key: must not be empty")
        if self.key_env is not None and not os.environ.get(self.key_env, "").strip():
            raise ValueError(f"key_env: the environment variable {self.key_env} is not set")
        return self

    def plain_key(self) -> str | None:
        """The key itself when the file gives it (directly or by variable), else None."""
        if self.key is not None:
            return self.key.get_secret_value()
        if self.key_env is not None:
            return os.environ.get(self.key_env, "").strip() or None
        return None

    def digest(self) -> bytes:
        """SHA-256 of the key: what is kept in memory and compared."""
        if self.key_sha256 is not None:
            return bytes.fromhex(self.key_sha256)
        return hashlib.sha256((self.plain_key() or "").encode()).digest()


@dataclass(frozen=True, slots=True)
class Client:
    """A named client as the server knows it: no key, only its digest."""

    name: str
    digest: bytes
    budget_usd: float | None


def unique_clients(entries: list[ClientEntry]) -> list[ClientEntry]:
    """Refuse two clients with one name or one key (the key would not say who it is)."""
    names: dict[str, int] = {}
    digests: dict[bytes, int] = {}
    for index, entry in enumerate(entries):
        if entry.name in names:
            raise ValueError(
                f"clients.{index}.name: {entry.name!r} is also clients.{names[entry.name]}"
            )
        digest = entry.digest()
        if digest in digests:
            raise ValueError(f"clients.{index}: the same key as clients.{digests[digest]}")
        names[entry.name] = index
        digests[digest] = index
    return entries


class ClientTable:
    """Client names by key digest, for the HTTP layer; empty when no clients are configured."""

    __slots__ = ("by_name", "clients")

    def __init__(self, entries: list[ClientEntry]) -> None:
        self.clients = tuple(Client(e.name, e.digest(), e.budget_usd) for e in entries)
        self.by_name = {c.name: c for c in self.clients}

    def __bool__(self) -> bool:
        return bool(self.clients)

    def identify(self, supplied: list[bytes]) -> Client | None:
        """The client whose key is one of `supplied`, compared in constant time."""
        found: Client | None = None
        for candidate in supplied:
            digest = hashlib.sha256(candidate).digest()
            for client in self.clients:  # no early exit
                if hmac.compare_digest(digest, client.digest) and found is None:
                    found = client
        return found


def client_key_values(entries: list[ClientEntry] | Any) -> list[str]:
    """Every client key the config file gives in plain (by `key` or `key_env`): for log
    masking. Keys given only as `key_sha256` are unknown to `oas` and so never logged."""
    return [k for k in (e.plain_key() for e in entries) if k]
