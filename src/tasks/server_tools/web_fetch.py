"""Web fetch (`web_fetch_*` tools), run by `oas`: the model names a URL, `oas` fetches it.

Each fetch is a `web-fetch` task. The client sees what Anthropic's API returns:
`server_tool_use` (name `web_fetch`, input `{url}`) then `web_fetch_tool_result` whose
content is a `web_fetch_result` with the page as a plain-text `document`, or a
`web_fetch_tool_result_error` with one of Anthropic's error codes. Tool failures never
raise: they are that error form, and the model is told what went wrong.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import httpx
import structlog

from src.core.settings import Settings
from src.schemas.anthropic import MessagesRequest, Tool
from src.services.netguard import AddressPolicy, BlockedAddress, guarded_client
from src.tasks.server_tools.base import ServerTool, ToolCall, ToolOutcome, note_use
from src.tasks.server_tools.page_text import (
    PDF_TYPES,
    UnsupportedContent,
    page_text,
    sniff_media_type,
    supported,
)
from src.tasks.server_tools.registry import register
from src.tracking import step

log = structlog.get_logger("oas.web_fetch")

MAX_URL_LENGTH = 250  # Anthropic's limit for the tool's `url`
CHARS_PER_TOKEN = 4  # a cheap, tokenizer-free estimate for `max_content_tokens`
USER_AGENT = "oas-web-fetch/0.1 (+https://github.com/oas-dev/oas)"

DESCRIPTION = (
    "Fetch the content of a web page or PDF at a URL and return it as text. Use it for URLs "
    "the user gave or that appeared in earlier results; it cannot reach private networks."
)


@dataclass(frozen=True)
class FetchLimits:
    """How far one fetch may go; from settings, narrowed by the tool's own parameters."""

    timeout: float = 20.0
    max_bytes: int = 10 * 1024 * 1024
    max_redirects: int = 5
    max_chars: int = 400_000


@dataclass(frozen=True)
class Fetched:
    """A fetch that worked: the final URL (after redirects), the text, its title."""

    url: str
    text: str
    title: str | None
    media_type: str
    truncated: bool = False


class FetchFailed(Exception):
    """A fetch that did not work, with the Anthropic error code that says why."""

    def __init__(self, error_code: str, detail: str) -> None:
        super().__init__(detail)
        self.error_code = error_code
        self.detail = detail


def domain_matches(url: str, entries: list[str]) -> bool:
    """True if `url` falls under one of `entries`: `example.com` covers the host and its
    subdomains, `example.com/docs` only paths under `/docs`, `*.example.com` subdomains."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower().rstrip(".")
    path = parts.path or "/"
    for entry in entries:
        entry = entry.strip().lower()
        if "://" in entry:
            entry = entry.split("://", 1)[1]
        domain, _, prefix = entry.partition("/")
        domain = domain.removeprefix("*.").rstrip(".")
        if not domain or not (host == domain or host.endswith("." + domain)):
            continue
        if not prefix or path.lstrip("/").startswith(prefix.rstrip("/")):
            return True
    return False


def _media_type(response: httpx.Response, body: bytes) -> tuple[str, str | None]:
    header = response.headers.get("content-type", "")
    media_type = header.split(";", 1)[0].strip().lower()
    if not media_type or media_type in ("application/octet-stream", "binary/octet-stream"):
        media_type = sniff_media_type(body) or media_type or "application/octet-stream"
    return media_type, response.charset_encoding


async def _read_capped(response: httpx.Response, max_bytes: int) -> tuple[bytes, bool]:
    """At most `max_bytes` of the body; (body, whether more was left unread)."""
    length = response.headers.get("content-length")
    if length and length.isdigit() and int(length) > max_bytes and _is_pdf_header(response):
        raise FetchFailed("content_too_large", f"{int(length)} bytes is over the limit")
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        chunks.append(chunk)
        size += len(chunk)
        if size > max_bytes:
            return b"".join(chunks)[:max_bytes], True
    return b"".join(chunks), False


def _is_pdf_header(response: httpx.Response) -> bool:
    return response.headers.get("content-type", "").split(";", 1)[0].strip().lower() in PDF_TYPES


async def fetch_page(client: httpx.AsyncClient, url: str, limits: FetchLimits) -> Fetched:
    """GET `url` through the guarded client and make text of it (raises `FetchFailed`)."""
    try:
        async with asyncio.timeout(limits.timeout):
            async with client.stream("GET", url) as response:
                if response.status_code == 429:
                    raise FetchFailed("too_many_requests", "the site answered 429")
                if response.status_code >= 400:
                    raise FetchFailed("url_not_accessible", f"HTTP {response.status_code}")
                body, truncated = await _read_capped(response, limits.max_bytes)
                final_url = str(response.url)
                media_type, charset = _media_type(response, body)
    except FetchFailed:
        raise
    except BlockedAddress as exc:
        raise FetchFailed("url_not_allowed", str(exc)) from None
    except httpx.TooManyRedirects:
        raise FetchFailed("url_not_accessible", "too many redirects") from None
    except (TimeoutError, httpx.TimeoutException):
        raise FetchFailed("url_not_accessible", "timed out") from None
    except httpx.InvalidURL as exc:
        raise FetchFailed("invalid_tool_input", f"invalid URL: {exc}") from None
    except (httpx.HTTPError, OSError) as exc:
        raise FetchFailed("url_not_accessible", f"{type(exc).__name__}: {exc}") from None
    if not supported(media_type):
        raise FetchFailed("unsupported_content_type", media_type)
    if truncated and media_type in PDF_TYPES:
        raise FetchFailed("content_too_large", "the PDF is over the size limit")
    try:
        page = await asyncio.to_thread(page_text, body, media_type, charset, final_url)
    except UnsupportedContent as exc:
        raise FetchFailed("unsupported_content_type", str(exc)) from None
    text = page.text
    if len(text) > limits.max_chars:
        text, truncated = text[: limits.max_chars], True
    return Fetched(final_url, text, page.title, media_type, truncated)


@step("web-fetch")
async def web_fetch_step(client: httpx.AsyncClient, url: str, limits: FetchLimits) -> Fetched:
    """Task: fetch one URL for the model (what was fetched shows in the run's summary)."""
    try:
        page = await fetch_page(client, url, limits)
    except FetchFailed as exc:
        note_use("web_fetch", f"{url} -> {exc.error_code}")
        raise
    note_use("web_fetch", f"{url} -> {len(page.text)} chars")
    return page


def error_block(tool_use_id: str, error_code: str) -> dict[str, Any]:
    return {
        "type": "web_fetch_tool_result",
        "tool_use_id": tool_use_id,
        "content": {"type": "web_fetch_tool_result_error", "error_code": error_code},
    }


def result_block(tool_use_id: str, page: Fetched, citations: bool) -> dict[str, Any]:
    document: dict[str, Any] = {
        "type": "document",
        "source": {"type": "text", "media_type": "text/plain", "data": page.text},
        "title": page.title,
    }
    if citations:
        document["citations"] = {"enabled": True}
    return {
        "type": "web_fetch_tool_result",
        "tool_use_id": tool_use_id,
        "content": {
            "type": "web_fetch_result",
            "url": page.url,
            "content": document,
            "retrieved_at": datetime.now(UTC).isoformat(timespec="seconds"),
        },
    }


_ERROR_TEXT = {
    "invalid_tool_input": "The input was not a valid http(s) URL.",
    "url_too_long": f"The URL is longer than {MAX_URL_LENGTH} characters.",
    "url_not_allowed": "Fetching this URL is not allowed.",
    "url_not_accessible": "The URL could not be fetched.",
    "too_many_requests": "The site is rate limiting requests.",
    "unsupported_content_type": "The content type is not supported (only text, HTML and PDF).",
    "content_too_large": "The content is too large to fetch.",
    "max_uses_exceeded": "The web fetch tool has been used as often as this request allows.",
    "unavailable": "Web fetch is unavailable.",
}


@dataclass
class WebFetchTool(ServerTool):
    """One request's `web_fetch_*` tool: its limits, domain rules and use count."""

    name: str = "web_fetch"
    max_uses: int | None = None
    allowed_domains: list[str] = field(default_factory=list)
    blocked_domains: list[str] = field(default_factory=list)
    citations: bool = False
    limits: FetchLimits = field(default_factory=FetchLimits)
    policy: AddressPolicy = field(default_factory=AddressPolicy)
    uses: int = 0
    _client: httpx.AsyncClient | None = None

    usage_key = "web_fetch_requests"

    def functions(self) -> list[dict[str, Any]]:
        return [
            {
                "type": "function",
                "function": {
                    "name": self.name,
                    "description": DESCRIPTION,
                    "parameters": {
                        "type": "object",
                        "properties": {
                            "url": {"type": "string", "description": "The URL to fetch"}
                        },
                        "required": ["url"],
                    },
                },
            }
        ]

    def use_block(self, call: ToolCall) -> dict[str, Any]:
        # Anthropic names the tool `web_fetch` in the block whatever the definition says.
        return {"type": "server_tool_use", "id": call.id, "name": "web_fetch", "input": call.input}

    def check(self, url: Any) -> str | None:
        """The error code that refuses `url` before any network traffic, or None."""
        if self.max_uses is not None and self.uses >= self.max_uses:
            return "max_uses_exceeded"
        if not isinstance(url, str) or not url.strip():
            return "invalid_tool_input"
        url = url.strip()
        if len(url) > MAX_URL_LENGTH:
            return "url_too_long"
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            return "invalid_tool_input"
        if self.allowed_domains and not domain_matches(url, self.allowed_domains):
            return "url_not_allowed"
        if self.blocked_domains and domain_matches(url, self.blocked_domains):
            return "url_not_allowed"
        return None

    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = guarded_client(
                self.policy,
                timeout=httpx.Timeout(self.limits.timeout, connect=min(10.0, self.limits.timeout)),
                max_redirects=self.limits.max_redirects,
                headers={
                    "user-agent": USER_AGENT,
                    "accept": "text/html,application/xhtml+xml,text/plain;q=0.9,"
                    "application/pdf;q=0.9,*/*;q=0.5",
                },
            )
        return self._client

    async def run(self, call: ToolCall) -> ToolOutcome:
        url = call.input.get("url") if isinstance(call.input, dict) else None
        if (code := self.check(url)) is not None or not isinstance(url, str):
            return self._failure(call, code or "invalid_tool_input", url)
        self.uses += 1
        try:
            page = await web_fetch_step(self.client(), url.strip(), self.limits)
        except FetchFailed as exc:
            return self._failure(call, exc.error_code, url, exc.detail)
        header = f"Fetched {page.url}" + (f" ({page.title})" if page.title else "")
        if page.truncated:
            header += " [content truncated]"
        return ToolOutcome(
            [result_block(call.id, page, self.citations)], f"{header}\n\n{page.text}"
        )

    def _failure(self, call: ToolCall, code: str, url: Any, detail: str = "") -> ToolOutcome:
        log.info(
            "web fetch refused or failed",
            error_code=code,
            detail=detail,
            url=url[:MAX_URL_LENGTH] if isinstance(url, str) else None,
        )
        message = f"Web fetch error ({code}): {_ERROR_TEXT.get(code, code)}"
        if detail and code not in ("url_not_allowed",):
            message += f" {detail}"
        return ToolOutcome([error_block(call.id, code)], message, is_error=True)

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None


def _domains(definition: Tool, key: str) -> list[str]:
    value = (definition.model_extra or {}).get(key) or []
    return [str(v) for v in value] if isinstance(value, list) else []


@register("web_fetch_")
def web_fetch_tool(definition: Tool, request: MessagesRequest, settings: Settings) -> WebFetchTool:
    """A request's web fetch tool, from its definition and the operator's limits."""
    extra = definition.model_extra or {}
    max_uses = extra.get("max_uses")
    citations = extra.get("citations")
    tokens = extra.get("max_content_tokens")
    max_tokens = settings.web_fetch_max_content_tokens
    if isinstance(tokens, int) and tokens > 0:
        max_tokens = min(tokens, max_tokens)
    limits = FetchLimits(
        timeout=settings.web_fetch_timeout,
        max_bytes=settings.web_fetch_max_bytes,
        max_redirects=settings.web_fetch_max_redirects,
        max_chars=max_tokens * CHARS_PER_TOKEN,
    )
    return WebFetchTool(
        name=definition.name or "web_fetch",
        max_uses=max_uses if isinstance(max_uses, int) and max_uses >= 0 else None,
        allowed_domains=_domains(definition, "allowed_domains"),
        blocked_domains=_domains(definition, "blocked_domains"),
        citations=bool(isinstance(citations, dict) and citations.get("enabled")),
        limits=limits,
        policy=AddressPolicy.from_entries(settings.web_fetch_allow_hosts),
    )
