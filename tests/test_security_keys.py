"""OAS_API_KEYS: every endpoint needs one of the keys, except liveness and the probes
Claude Code sends before it authenticates; keys are compared in constant time."""

from __future__ import annotations

import hmac

import httpx
import pytest

import src.api.middleware as middleware
from src.api.app import create_app
from src.api.middleware import OPEN_PATHS

KEYS = ["first-client-key-0123456789", "second-client-key-abcdefghij"]


@pytest.fixture(scope="module")
def keyed(upstream_server, tmp_path_factory):
    from tests.conftest import OasInstance, make_settings

    instance = OasInstance(
        make_settings(upstream_server, tmp_path_factory.mktemp("keyed"), api_keys=KEYS)
    )
    yield instance
    instance.stop()


def every_route() -> list[tuple[str, str]]:
    """(method, path) of every route the app serves, whatever other modules add."""
    found: list[tuple[str, str]] = []

    def walk(routes: list, prefix: str) -> None:
        for route in routes:
            included = getattr(route, "original_router", None)  # FastAPI's include_router
            if included is not None:
                walk(included.routes, prefix + route.include_context.prefix)
            for method in sorted(getattr(route, "methods", None) or []):
                found.append((method, prefix + route.path))

    walk(create_app().routes, "")
    return found


ROUTES = every_route()


def call(url: str, method: str, path: str, headers: dict | None = None) -> httpx.Response:
    path = path.replace("{", "").replace("}", "")  # any path parameter: a literal value
    body = {"model": "big", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}
    return httpx.request(
        method, f"{url}{path}", headers=headers, timeout=30, json=body if method == "POST" else None
    )


def test_the_app_has_protected_routes_to_check():
    assert ("POST", "/v1/messages") in ROUTES
    assert any(path not in OPEN_PATHS for _, path in ROUTES)


@pytest.mark.parametrize(("method", "path"), [r for r in ROUTES if r[1] not in OPEN_PATHS])
@pytest.mark.parametrize(
    "headers",
    [
        None,
        {"x-api-key": "wrong"},
        {"authorization": "Bearer wrong"},
        {"x-api-key": KEYS[0][:-1]},  # a prefix of a key
        {"x-api-key": KEYS[0] + "x"},  # a key and more
        {"authorization": KEYS[0]},  # no Bearer scheme
        {"x-api-key": "ключ-é".encode()},  # not ASCII
    ],
)
def test_protected_route_refuses_without_a_valid_key(keyed, upstream, method, path, headers):
    response = call(keyed.url, method, path, headers)
    assert response.status_code == 401
    if method != "HEAD":
        assert response.json() == {
            "type": "error",
            "request_id": response.headers["request-id"],
            "error": {"type": "authentication_error", "message": "invalid x-api-key"},
        }
    assert upstream.requests == []


@pytest.mark.parametrize(("method", "path"), [r for r in ROUTES if r[1] not in OPEN_PATHS])
@pytest.mark.parametrize(
    "headers",
    [
        {"x-api-key": KEYS[0]},
        {"x-api-key": KEYS[1]},
        {"authorization": f"Bearer {KEYS[1]}"},
        {"authorization": f"bearer {KEYS[0]}"},
        {
            "x-api-key": "anything",
            "authorization": f"Bearer {KEYS[0]}",
        },  # Claude Code may send both
    ],
)
def test_protected_route_accepts_any_configured_key(keyed, upstream, method, path, headers):
    assert call(keyed.url, method, path, headers).status_code != 401


@pytest.mark.parametrize(("method", "path"), [r for r in ROUTES if r[1] in OPEN_PATHS])
def test_liveness_and_claude_code_probes_stay_open(keyed, method, path):
    response = call(keyed.url, method, path)
    assert response.status_code == 200
    assert response.headers["request-id"]


def test_unknown_paths_are_refused_before_anything_else(keyed):
    assert httpx.get(f"{keyed.url}/admin/secrets").status_code == 401
    assert httpx.get(f"{keyed.url}/openapi.json").status_code == 401


def test_without_keys_configured_nothing_is_asked(oas, upstream):
    assert (
        httpx.post(
            f"{oas.url}/v1/messages",
            json={"model": "big", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]},
        ).status_code
        == 200
    )


def test_every_key_is_compared_whichever_matches(keyed, monkeypatch):
    """No early exit: the time taken does not tell an attacker which key (if any) matched."""
    compared: list[bytes] = []
    original = hmac.compare_digest

    def counting(a: bytes, b: bytes) -> bool:
        compared.append(b)
        return original(a, b)

    monkeypatch.setattr(middleware.hmac, "compare_digest", counting)
    for key in (KEYS[0], KEYS[1], "wrong"):
        compared.clear()
        httpx.get(f"{keyed.url}/v1/messages", headers={"x-api-key": key})
        assert compared == [k.encode() for k in KEYS]
