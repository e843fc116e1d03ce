"""Secrets are masked in any text that leaves the process: the configured key exactly,
and anything shaped like an API key."""

from __future__ import annotations

import pytest

from src.core.errors import scrub_secrets


@pytest.mark.parametrize(
    ("text", "secrets", "expected"),
    [
        ("key sk-or-v1-abcdef0123456789 leaked", (), "key [redacted] leaked"),
        ("key sk-ant-api03-abcdef0123456789 leaked", (), "key [redacted] leaked"),
        ("token custom-token-12345 echoed", ("custom-token-12345",), "token [redacted] echoed"),
        ("a short key k stays readable", ("k",), "a short key k stays readable"),
        ("no secrets here, sk- alone is fine", (), "no secrets here, sk- alone is fine"),
    ],
)
def test_scrub_secrets(text, secrets, expected):
    assert scrub_secrets(text, *secrets) == expected
