"""The Claude Code session id in `metadata.user_id`, in the shapes real releases send."""

from __future__ import annotations

import pytest

from src.core.context import session_from_metadata

SESSION = "6f429033-b7ed-43cb-bec3-fbdc33444bf5"


@pytest.mark.parametrize(
    "user_id",
    [
        # 1.0.x and 2.0.x
        f"user_3b5d3325bec88d6732dd14bd761bbe6fc943579dc1b084a4ec6217c2210651df"
        f"_account__session_{SESSION}",
        # with an account uuid (logged-in users)
        f"user_abc_account_0b7c1d2e-0000-4000-8000-000000000000_session_{SESSION}",
        # 2.1.x: a JSON string
        f'{{"device_id":"68f8eb84e4","account_uuid":"","session_id":"{SESSION}"}}',
    ],
)
def test_session_id_is_read_from_each_release_format(user_id):
    assert session_from_metadata({"metadata": {"user_id": user_id}}) == SESSION


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"metadata": None},
        {"metadata": {}},
        {"metadata": {"user_id": 42}},
        {"metadata": {"user_id": "someone@example.com"}},
        {"metadata": {"user_id": "{not json"}},
        {"metadata": {"user_id": '{"session_id": 7}'}},
        {"metadata": {"user_id": '["session_id"]'}},
        {"metadata": {"user_id": "x" * 5000 + "_session_abcdefgh"}},
        "not a dict",
    ],
)
def test_anything_else_is_no_session(body):
    assert session_from_metadata(body) is None
