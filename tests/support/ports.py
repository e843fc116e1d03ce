"""Free loopback ports: every server a test starts listens on one, never on a fixed port,
since other test runs share the machine."""

from __future__ import annotations

import socket


def free_port() -> int:
    """A loopback port nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
