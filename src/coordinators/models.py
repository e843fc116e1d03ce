"""GET /v1/models: the names this server answers to, in Anthropic's list format.

Three sources, in this order: the aliases (`big`, `small`), the Claude model names
LiteLLM's bundled model metadata knows (each mapped to the big or small model, as
`/v1/messages` maps them), and the upstream's own list from `OPENROUTER_BASE_URL/models`.

The upstream list is cached (`ttl` seconds); past that the cached list is served while a
refresh runs in the background, and a failed refresh keeps the last good list. Each fetch
doubles as the upstream reachability probe `/health/detailed` reports.
"""

from __future__ import annotations

import asyncio
import importlib.util
import re
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import httpx
import orjson
import structlog

from src import __version__
from src.core.errors import AnthropicError
from src.core.settings import Settings
from src.tasks.routing import map_model

log = structlog.get_logger("oas.models")

EPOCH = "1970-01-01T00:00:00Z"  # Anthropic's value when a release date is unknown
_DATED = re.compile(r"^(?P<base>.+)-(?P<date>20\d{6})$")


# ---- Claude names from LiteLLM's metadata ---------------------------------------------


@dataclass(frozen=True, slots=True)
class ClaudeName:
    id: str
    created_at: str


def _litellm_metadata_file() -> Path | None:
    """LiteLLM's bundled model map, found without importing LiteLLM (seconds)."""
    spec = importlib.util.find_spec("litellm")
    for location in (spec.submodule_search_locations or []) if spec else []:
        path = Path(location) / "model_prices_and_context_window_backup.json"
        if path.is_file():
            return path
    return None


def _release_date(name: str) -> str | None:
    match = _DATED.match(name)
    if not match:
        return None
    try:
        day = datetime.strptime(match["date"], "%Y%m%d").replace(tzinfo=UTC)
    except ValueError:
        return None
    return day.strftime("%Y-%m-%dT%H:%M:%SZ")


@lru_cache(maxsize=1)
def claude_names(today: date | None = None) -> tuple[ClaudeName, ...]:
    """Anthropic chat models in LiteLLM's metadata that are not past their deprecation date."""
    path = _litellm_metadata_file()
    if path is None:
        log.warning("LiteLLM model metadata not found; /v1/models lists no Claude names")
        return ()
    data = orjson.loads(path.read_bytes())
    today_iso = (today or date.today()).isoformat()
    names = [
        name
        for name, info in data.items()
        if isinstance(info, dict)
        and info.get("litellm_provider") == "anthropic"
        and info.get("mode") == "chat"
        and name.startswith("claude")
        and not (
            isinstance(info.get("deprecation_date"), str) and info["deprecation_date"] < today_iso
        )
    ]
    released = {m["base"]: _release_date(n) for n in names if (m := _DATED.match(n))}
    out = []
    for name in names:
        created = _release_date(name) or released.get(name) or EPOCH
        out.append(ClaudeName(name, created))
    out.sort(key=lambda c: (c.created_at, c.id), reverse=True)
    return tuple(out)


def claude_display_name(name: str) -> str:
    """`claude-opus-4-5-20251101` -> `Claude Opus 4.5`."""
    match = _DATED.match(name)
    words = (match["base"] if match else name).split("-")
    family: list[str] = []
    version: list[str] = []
    for word in words:
        (version if word.isdigit() else family).append(word)
    text = " ".join(w.capitalize() for w in family)
    return f"{text} {'.'.join(version)}".strip()


# ---- the upstream's list, cached ----------------------------------------------------


@dataclass
class UpstreamStatus:
    """The last probe of `OPENROUTER_BASE_URL/models`."""

    reachable: bool | None = None  # None: never checked
    checked_at: float | None = None
    latency_ms: float | None = None
    error: str | None = None
    models: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "reachable": self.reachable,
            "checked_at": (
                datetime.fromtimestamp(self.checked_at, UTC).isoformat()
                if self.checked_at
                else None
            ),
            "latency_ms": round(self.latency_ms, 1) if self.latency_ms is not None else None,
            "error": self.error,
            "models": self.models,
        }


class ModelCatalog:
    """The upstream's model list and reachability, fetched at most every `ttl` seconds."""

    def __init__(
        self,
        settings: Settings,
        *,
        ttl: float = 600.0,
        probe_ttl: float = 30.0,
        timeout: float = 5.0,
    ) -> None:
        self.settings = settings
        self.url = f"{settings.openrouter_base_url}/models"
        self.ttl = ttl
        self.probe_ttl = probe_ttl
        self.timeout = timeout
        self.status = UpstreamStatus()
        self._models: list[dict[str, Any]] | None = None
        self._fetched_at = 0.0
        self._client: httpx.AsyncClient | None = None
        self._refresh: asyncio.Task[None] | None = None

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            headers = {
                "HTTP-Referer": self.settings.app_url,
                "X-Title": self.settings.app_title,
                "User-Agent": f"oas/{__version__}",
            }
            if self.settings.upstream_key:
                headers["Authorization"] = f"Bearer {self.settings.upstream_key}"
            self._client = httpx.AsyncClient(
                headers=headers,
                timeout=httpx.Timeout(
                    self.timeout, connect=min(self.timeout, self.settings.connect_timeout)
                ),
            )
        return self._client

    async def _fetch(self) -> None:
        started = time.perf_counter()
        error: str | None = None
        models: list[dict[str, Any]] | None = None
        try:
            response = await self._http().get(self.url)
            if response.status_code >= 400:
                error = f"HTTP {response.status_code}"
            else:
                models = _parse_models(orjson.loads(response.content))
        except httpx.HTTPError as exc:
            error = type(exc).__name__  # never str(exc): nothing of the request leaks
        except (orjson.JSONDecodeError, ValueError):
            error = "malformed model list"
        self.status.checked_at = time.time()
        self.status.latency_ms = (time.perf_counter() - started) * 1000
        # An answer at all (even 401) shows the upstream is reachable.
        self.status.reachable = error is None or error.startswith("HTTP")
        self.status.error = error
        if models is not None:
            self._models = models
            self._fetched_at = time.monotonic()
            self.status.models = len(models)
        elif error:
            log.warning(
                "upstream model list unavailable",
                error=error,
                url=self.url,
                serving="cached list" if self._models is not None else "aliases only",
            )

    async def refresh(self) -> None:
        """Fetch now; concurrent callers share one fetch."""
        if self._refresh is None or self._refresh.done():
            self._refresh = asyncio.ensure_future(self._fetch())
        await asyncio.shield(self._refresh)

    async def upstream_models(self) -> list[dict[str, Any]]:
        """The cached list; fetched on first use, refreshed in the background when old."""
        if self._models is None:
            if (
                self.status.checked_at is None
                or time.time() - self.status.checked_at > self.probe_ttl
            ):
                await self.refresh()
            return self._models or []
        if time.monotonic() - self._fetched_at > self.ttl and (
            self._refresh is None or self._refresh.done()
        ):
            self._refresh = asyncio.ensure_future(self._fetch())
        return self._models

    async def probe(self) -> UpstreamStatus:
        """Reachability, re-checked when the last check is older than `probe_ttl`."""
        if self.status.checked_at is None or time.time() - self.status.checked_at > self.probe_ttl:
            await self.refresh()
        return self.status

    async def aclose(self) -> None:
        if self._refresh is not None and not self._refresh.done():
            self._refresh.cancel()
        if self._client is not None:
            try:
                await self._client.aclose()
            except Exception:
                pass


def _parse_models(body: Any) -> list[dict[str, Any]]:
    """OpenRouter's (or OpenAI's) `{"data": [...]}` as Anthropic model entries."""
    items = body.get("data") if isinstance(body, dict) else body
    if not isinstance(items, list):
        raise ValueError("no model list")
    out = []
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("id"), str) or not item["id"]:
            continue
        created = item.get("created")
        entry: dict[str, Any] = {
            "type": "model",
            "id": item["id"],
            "display_name": str(item.get("name") or item["id"]),
            "created_at": (
                datetime.fromtimestamp(created, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
                if isinstance(created, (int, float)) and created > 0
                else EPOCH
            ),
        }
        context = item.get("context_length")
        if isinstance(context, int) and context > 0:
            entry["max_input_tokens"] = context
        out.append(entry)
    out.sort(key=lambda m: m["created_at"], reverse=True)
    return out


# ---- the list clients see -------------------------------------------------------------


def model_entries(settings: Settings, upstream: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Aliases, then mapped Claude names (newest first), then upstream models; ids unique."""
    context = {m["id"]: m["max_input_tokens"] for m in upstream if "max_input_tokens" in m}

    def mapped(name: str, display: str, created_at: str) -> dict[str, Any]:
        target = map_model(name, settings).upstream_model
        entry: dict[str, Any] = {
            "type": "model",
            "id": name,
            "display_name": f"{display} → {target}",
            "created_at": created_at,
        }
        if target in context:
            entry["max_input_tokens"] = context[target]
        return entry

    entries = [mapped("big", "big", EPOCH), mapped("small", "small", EPOCH)]
    entries += [mapped(c.id, claude_display_name(c.id), c.created_at) for c in claude_names()]
    entries += upstream
    seen: set[str] = set()
    unique = []
    for entry in entries:
        if entry["id"] not in seen:
            seen.add(entry["id"])
            unique.append(entry)
    return unique


def page(
    entries: list[dict[str, Any]], limit: int, after_id: str | None, before_id: str | None
) -> dict[str, Any]:
    """One page in Anthropic's list shape, with its cursor fields."""
    ids = [e["id"] for e in entries]
    if before_id is not None:
        end = ids.index(before_id) if before_id in ids else 0
        start = max(0, end - limit)
        data, has_more = entries[start:end], start > 0
    else:
        start = ids.index(after_id) + 1 if after_id in ids else (len(ids) if after_id else 0)
        data, has_more = entries[start : start + limit], start + limit < len(entries)
    return {
        "data": data,
        "has_more": has_more,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
    }


async def _entries(catalog: ModelCatalog, settings: Settings) -> list[dict[str, Any]]:
    if claude_names.cache_info().currsize == 0:
        await asyncio.to_thread(claude_names)  # ~20 ms of JSON, once, off the event loop
    return model_entries(settings, await catalog.upstream_models())


async def list_models(
    catalog: ModelCatalog,
    settings: Settings,
    *,
    limit: int = 20,
    after_id: str | None = None,
    before_id: str | None = None,
) -> dict[str, Any]:
    """GET /v1/models."""
    return page(await _entries(catalog, settings), limit, after_id, before_id)


async def get_model(catalog: ModelCatalog, settings: Settings, model_id: str) -> dict[str, Any]:
    """GET /v1/models/{model_id}; 404 `not_found_error` for a name not listed."""
    for entry in await _entries(catalog, settings):
        if entry["id"] == model_id:
            return entry
    raise AnthropicError("not_found_error", f"model: {model_id}")
