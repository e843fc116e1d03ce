"""`oas doctor`'s upstream checks: the key, the server, the configured models."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from urllib.parse import urlsplit

import httpx

from src.cli.doctor.base import FAIL, OK, WARN, Check
from src.cli.settings_info import mask_url
from src.core.settings import Settings


def _upstream_headers(settings: Settings) -> dict[str, str]:
    headers = {"HTTP-Referer": settings.app_url, "X-Title": settings.app_title}
    if settings.upstream_key:
        headers["Authorization"] = f"Bearer {settings.upstream_key}"
    return headers


def _is_openrouter(settings: Settings) -> bool:
    return (urlsplit(settings.openrouter_base_url).hostname or "").endswith("openrouter.ai")


def check_upstream_key(settings: Settings, timeout: float) -> Iterable[Check]:
    if settings.upstream_key:
        yield Check("upstream key", OK, "OPENROUTER_API_KEY is set")
    elif _is_openrouter(settings):
        yield Check(
            "upstream key",
            FAIL,
            "OPENROUTER_API_KEY is not set; OpenRouter refuses requests without it",
            "create a key at https://openrouter.ai/keys and put "
            "OPENROUTER_API_KEY=sk-or-v1-... in the environment or in .env",
        )
    else:
        yield Check(
            "upstream key",
            WARN,
            f"OPENROUTER_API_KEY is not set; fine only if "
            f"{settings.openrouter_base_url} needs no key",
            "set OPENROUTER_API_KEY if the upstream answers 401",
        )


def check_upstream(settings: Settings, timeout: float) -> Iterable[Check]:
    """Reachability (GET /models), the key (GET /key, where the upstream has it) and
    whether the models `big` and `small` map to are offered."""
    base = settings.openrouter_base_url
    shown = mask_url(base)
    try:
        with httpx.Client(headers=_upstream_headers(settings), timeout=timeout) as http:
            models = http.get(f"{base}/models")
            key = http.get(f"{base}/key") if settings.upstream_key else None
    except httpx.HTTPError as exc:
        yield Check(
            "upstream",
            FAIL,
            f"cannot reach {shown}/models: {type(exc).__name__}: {exc}",
            "check OPENROUTER_BASE_URL, the network, and any HTTPS_PROXY this needs",
        )
        return
    if models.status_code in (401, 403):
        yield Check(
            "upstream",
            FAIL,
            f"{shown}/models answered {models.status_code}: the key is refused",
            "put a valid key in OPENROUTER_API_KEY",
        )
        return
    if models.status_code != 200:
        yield Check(
            "upstream",
            FAIL,
            f"{shown}/models answered HTTP {models.status_code}",
            "is OPENROUTER_BASE_URL the base of an OpenAI-compatible API "
            "(it ends in /v1 or /api/v1)?",
        )
        return
    try:
        listed = [m["id"] for m in models.json().get("data", []) if isinstance(m, dict)]
    except (ValueError, KeyError, TypeError, AttributeError):
        listed = []
    yield Check("upstream", OK, f"{shown} answers ({len(listed)} models listed)")
    if key is not None:
        if key.status_code in (401, 403):
            yield Check(
                "upstream key accepted",
                FAIL,
                f"{shown}/key answered {key.status_code}: the key is refused",
                "the key in OPENROUTER_API_KEY is wrong, revoked or expired: "
                "make a new one at https://openrouter.ai/keys",
            )
        elif key.status_code == 200:
            yield Check("upstream key accepted", OK, "the upstream accepts the key")
        # Other answers (404 from servers without /key): nothing to say.
    if not listed:
        return
    for env, model in (
        ("OAS_BIG_MODEL", settings.big_model),
        ("OAS_SMALL_MODEL", settings.small_model),
    ):
        if model in listed:
            yield Check(f"model {env}", OK, f"{model} is offered")
        else:
            close = difflib.get_close_matches(model, listed, n=3, cutoff=0.6)
            hint = f" (close: {', '.join(close)})" if close else ""
            yield Check(
                f"model {env}",
                FAIL,
                f"{model} is not among the upstream's models{hint}",
                f"set {env} to a model id the upstream lists ({shown}/models)",
            )


# ---- Prefect ------------------------------------------------------------------------------
