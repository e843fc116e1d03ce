"""What one `oas doctor` check reports."""

from __future__ import annotations

from dataclasses import dataclass

OK, WARN, FAIL = "ok", "warn", "FAIL"
LOOPBACK = ("127.0.0.1", "localhost", "::1")


@dataclass(frozen=True, slots=True)
class Check:
    """The outcome of one check; `fix` says what to do when it is not ok."""

    name: str
    status: str
    detail: str
    fix: str = ""
