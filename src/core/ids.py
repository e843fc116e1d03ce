"""Identifiers in Anthropic's shapes: `msg_...`, `toolu_...`, `req_...`."""

from __future__ import annotations

import secrets

_ALPHABET = "0123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def _token(length: int = 24) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


def message_id() -> str:
    return f"msg_{_token()}"


def tool_use_id() -> str:
    return f"toolu_{_token()}"


def request_id() -> str:
    return f"req_{_token()}"


def server_tool_use_id(prefix: str = "srvtoolu_") -> str:
    """`srvtoolu_...` (server tools) or `mcptoolu_...` (MCP tools)."""
    return f"{prefix}{_token()}"
