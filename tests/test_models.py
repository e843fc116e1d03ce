"""GET /v1/models and /v1/models/{id}: aliases, mapped Claude names and the upstream's list."""

from __future__ import annotations

import time
from datetime import date, datetime

import anthropic
import httpx
import pytest

from src.coordinators.models import claude_display_name, claude_names, page


def all_models(instance) -> list:
    return list(instance.client().models.list(limit=50))  # the SDK follows has_more / last_id


def test_the_sdk_lists_aliases_claude_names_and_upstream_models(oas, upstream):
    models = {m.id: m for m in all_models(oas)}
    big, small = oas.settings.big_model, oas.settings.small_model
    assert models["big"].display_name == f"big → {big}"
    assert models["small"].display_name == f"small → {small}"
    claude = [m for m in models.values() if m.id.startswith("claude-")]
    assert len(claude) >= 3
    for m in claude:
        target = small if "haiku" in m.id else big
        assert m.display_name.endswith(f"→ {target}")
    assert models["openai/gpt-4o"].display_name == "OpenAI: GPT-4o"
    assert models["openai/gpt-4o"].created_at == datetime.fromisoformat("2024-05-13T00:00:00+00:00")
    assert all(m.type == "model" for m in models.values())


def test_the_list_is_aliases_first_then_newest_first_and_pages_follow_cursors(oas):
    with httpx.Client(base_url=oas.url) as http:
        everything = http.get("/v1/models", params={"limit": 1000}).json()
        ids = [m["id"] for m in everything["data"]]
        assert ids[:2] == ["big", "small"] and everything["has_more"] is False
        assert len(ids) == len(set(ids))
        claude = [m["created_at"] for m in everything["data"] if m["id"].startswith("claude-")]
        assert claude == sorted(claude, reverse=True)

        first = http.get("/v1/models", params={"limit": 2}).json()
        assert [m["id"] for m in first["data"]] == ids[:2]
        assert (first["first_id"], first["last_id"], first["has_more"]) == (ids[0], ids[1], True)
        second = http.get("/v1/models", params={"limit": 3, "after_id": first["last_id"]}).json()
        assert [m["id"] for m in second["data"]] == ids[2:5]
        back = http.get("/v1/models", params={"limit": 2, "before_id": ids[4]}).json()
        assert [m["id"] for m in back["data"]] == ids[2:4] and back["has_more"] is True

        bad = http.get("/v1/models", params={"limit": 0})
        assert bad.status_code == 400 and bad.json()["error"]["type"] == "invalid_request_error"


def test_retrieve_a_model_by_alias_claude_name_or_upstream_id(oas):
    client = oas.client()
    assert client.models.retrieve("big").display_name.endswith(oas.settings.big_model)
    claude = next(m.id for m in all_models(oas) if "haiku" in m.id)
    assert client.models.retrieve(claude).display_name.endswith(oas.settings.small_model)
    upstream_model = client.models.retrieve("openai/gpt-4o")  # the SDK sends the / as %2F
    assert upstream_model.id == "openai/gpt-4o"


def test_an_unknown_model_is_a_404_not_found_error(oas):
    with pytest.raises(anthropic.NotFoundError) as caught:
        oas.client().models.retrieve("no-such-model")
    body = caught.value.response.json()
    assert body["type"] == "error" and body["error"]["type"] == "not_found_error"
    assert "no-such-model" in body["error"]["message"]


def test_the_upstream_list_is_fetched_once_and_served_stale_when_the_upstream_fails(
    make_oas, upstream
):
    instance = make_oas()
    all_models(instance)
    all_models(instance)
    assert upstream.models_requests == 1

    instance.runtime.catalog.ttl = 0  # every list is now past its age: refresh in background
    upstream.models_status = 502
    ids = {m.id for m in all_models(instance)}
    assert "openai/gpt-4o" in ids  # the last good list, not an error
    deadline = time.monotonic() + 10
    while upstream.models_requests < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert upstream.models_requests >= 2
    assert "openai/gpt-4o" in {m.id for m in all_models(instance)}


def test_an_unreachable_upstream_still_lists_aliases_and_claude_names(make_oas, upstream):
    upstream.models_status = 500
    models = {m.id for m in all_models(make_oas())}
    assert {"big", "small"} <= models
    assert any(m.startswith("claude-") for m in models)
    assert "openai/gpt-4o" not in models


def test_models_need_a_client_key_when_keys_are_set(make_oas):
    instance = make_oas(api_keys=["client-key"])
    assert any(m.id == "big" for m in all_models(instance))
    with pytest.raises(anthropic.AuthenticationError):
        anthropic.Anthropic(base_url=instance.url, api_key="wrong", max_retries=0).models.list()


# ---- the pure parts --------------------------------------------------------------------


def test_claude_names_come_from_litellms_metadata_without_deprecated_ones():
    names = claude_names()
    assert names and all(n.id.startswith("claude") for n in names)
    claude_names.cache_clear()
    long_ago = claude_names(date(2000, 1, 1))
    claude_names.cache_clear()
    far_future = claude_names(date(2100, 1, 1))
    claude_names.cache_clear()
    # some entries carry a deprecation date: past it, they are no longer listed
    assert len(far_future) < len(long_ago)
    assert len(far_future) <= len(names) <= len(long_ago)


def test_claude_display_names():
    assert claude_display_name("claude-opus-4-5-20251101") == "Claude Opus 4.5"
    assert claude_display_name("claude-haiku-4-5") == "Claude Haiku 4.5"
    assert claude_display_name("claude-3-7-sonnet-20250219") == "Claude Sonnet 3.7"


def test_page_of_an_unknown_cursor_is_empty():
    entries = [{"id": str(i)} for i in range(5)]
    assert page(entries, 2, "nope", None) == {
        "data": [],
        "has_more": False,
        "first_id": None,
        "last_id": None,
    }
