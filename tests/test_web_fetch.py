"""Web fetch: what the client sees for a fetch (Anthropic's exact block shapes), the limits,
and the address guard that keeps the tool off private networks."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from anthropic.types.beta import BetaServerToolUseBlock, BetaWebFetchToolResultBlock

from src.core.settings import Settings
from src.schemas.anthropic import MessagesRequest
from src.services.netguard import (
    AddressPolicy,
    BlockedAddress,
    GuardedTransport,
    is_public,
)
from src.tasks.server_tools import ToolCall, build_toolbox
from src.tasks.server_tools.web_fetch import WebFetchTool
from tests.support.web_site import WebSite


@pytest.fixture(scope="module")
def site() -> Iterator[WebSite]:
    server = WebSite().start()
    yield server
    server.stop()


def fetch_tool(allow: list[str], **tool: Any) -> WebFetchTool:
    """The web fetch tool a request with this definition gets, under these settings."""
    request = MessagesRequest.model_validate(
        {
            "model": "sonnet",
            "max_tokens": 100,
            "messages": [{"role": "user", "content": "read it"}],
            "tools": [{"type": "web_fetch_20250910", "name": "web_fetch", **tool}],
        }
    )
    toolbox = build_toolbox(request, Settings(web_fetch_allow_hosts=allow, web_fetch_timeout=5.0))
    [kind] = toolbox.tools
    assert isinstance(kind, WebFetchTool)
    return kind


async def fetch(tool: WebFetchTool, url: Any) -> tuple[dict[str, Any], str, bool]:
    outcome = await tool.run(ToolCall("srvtoolu_01", "web_fetch", {"url": url}))
    [block] = outcome.blocks
    return block, outcome.for_model if isinstance(outcome.for_model, str) else "", outcome.is_error


def error_code(block: dict[str, Any]) -> str | None:
    return block["content"].get("error_code")


async def test_html_page_becomes_a_markdown_document_block(site: WebSite) -> None:
    tool = fetch_tool(["127.0.0.1"])
    block, for_model, is_error = await fetch(tool, site.url("/to-article"))
    await tool.aclose()

    assert not is_error
    parsed = BetaWebFetchToolResultBlock.model_validate(block)  # the SDK's own type
    assert parsed.tool_use_id == "srvtoolu_01"
    result = block["content"]
    assert result["type"] == "web_fetch_result"
    assert result["url"] == site.url("/article")  # the final URL, after the redirect
    assert result["retrieved_at"].endswith("+00:00")
    document = result["content"]
    assert document["type"] == "document"
    assert document["source"]["type"] == "text" and document["source"]["media_type"] == "text/plain"
    assert document["title"] == "Prefect & oas notes"
    text = document["source"]["data"]
    assert "# Running every request as a flow" in text
    assert f"[the replay guide]({site.url('/docs/replay')})" in text  # links made absolute
    assert "Login" not in text and "nobody" not in text  # menus and footers dropped
    assert "citations" not in document
    assert "Running every request as a flow" in for_model


def test_use_block_is_anthropics_server_tool_use() -> None:
    tool = fetch_tool([])
    block = tool.use_block(ToolCall("srvtoolu_01", "web_fetch", {"url": "https://example.com"}))
    BetaServerToolUseBlock.model_validate(block)
    assert block == {
        "type": "server_tool_use",
        "id": "srvtoolu_01",
        "name": "web_fetch",
        "input": {"url": "https://example.com"},
    }
    [function] = tool.functions()
    assert function["function"]["name"] == "web_fetch"
    assert function["function"]["parameters"]["required"] == ["url"]


async def test_text_and_pdf_are_read_citations_when_asked(site: WebSite) -> None:
    tool = fetch_tool(["127.0.0.1"], citations={"enabled": True})
    text_block, _, _ = await fetch(tool, site.url("/notes.txt"))
    pdf_block, for_model, is_error = await fetch(tool, site.url("/paper.pdf"))
    await tool.aclose()

    assert text_block["content"]["content"]["source"]["data"] == "plain notes: caf\u00e9"
    assert text_block["content"]["content"]["citations"] == {"enabled": True}
    assert not is_error
    assert "Hello from a PDF" in pdf_block["content"]["content"]["source"]["data"]
    assert "Hello from a PDF" in for_model


@pytest.mark.parametrize(
    ("path", "code"),
    [
        ("/image.png", "unsupported_content_type"),
        ("/busy", "too_many_requests"),
        ("/gone", "url_not_accessible"),
        ("/missing", "url_not_accessible"),
        ("/loop", "url_not_accessible"),
    ],
)
async def test_failures_are_the_error_form(site: WebSite, path: str, code: str) -> None:
    tool = fetch_tool(["127.0.0.1"])
    block, for_model, is_error = await fetch(tool, site.url(path))
    await tool.aclose()
    assert is_error
    BetaWebFetchToolResultBlock.model_validate(block)
    assert block["content"] == {"type": "web_fetch_tool_result_error", "error_code": code}
    assert code in for_model  # the model is told why


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("ftp://example.com/file", "invalid_tool_input"),
        ("not a url", "invalid_tool_input"),
        (42, "invalid_tool_input"),
        ("https://example.com/" + "a" * 250, "url_too_long"),
    ],
)
async def test_bad_input_is_refused_before_any_request(url: Any, code: str) -> None:
    tool = fetch_tool([])
    block, _, is_error = await fetch(tool, url)
    assert is_error and error_code(block) == code
    assert tool.uses == 0


async def test_domain_rules_and_max_uses(site: WebSite) -> None:
    allowed = fetch_tool(["127.0.0.1"], allowed_domains=["example.com"])
    block, _, _ = await fetch(allowed, site.url("/article"))
    assert error_code(block) == "url_not_allowed"

    blocked = fetch_tool(["127.0.0.1"], blocked_domains=["127.0.0.1"])
    block, _, _ = await fetch(blocked, site.url("/article"))
    assert error_code(block) == "url_not_allowed"

    once = fetch_tool(["127.0.0.1"], max_uses=1)
    first, _, first_error = await fetch(once, site.url("/notes.txt"))
    second, _, _ = await fetch(once, site.url("/notes.txt"))
    await once.aclose()
    assert not first_error
    assert error_code(second) == "max_uses_exceeded"


async def test_content_is_cut_to_max_content_tokens(site: WebSite) -> None:
    tool = fetch_tool(["127.0.0.1"], max_content_tokens=1000)
    block, for_model, is_error = await fetch(tool, site.url("/big.txt"))
    await tool.aclose()
    assert not is_error
    assert len(block["content"]["content"]["source"]["data"]) == 4000  # ~4 characters a token
    assert "[content truncated]" in for_model


# -- the address guard -----------------------------------------------------------------


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        "localhost",
        "10.1.2.3",
        "192.168.0.10",
        "172.16.5.5",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "224.0.0.1",
        "[::1]",
        "[fe80::1]",
        "[fc00::1]",
        "[fec0::1]",
        "[::ffff:127.0.0.1]",
        "2130706433",
    ],
)
async def test_private_targets_are_refused_by_default(site: WebSite, host: str) -> None:
    site.paths.clear()
    tool = fetch_tool([])
    port = f":{site.port}" if host in ("127.0.0.1", "localhost") else ""
    block, _, is_error = await fetch(tool, f"http://{host}{port}/article")
    await tool.aclose()
    assert is_error
    assert error_code(block) == "url_not_allowed"
    assert "/article" not in site.paths


async def test_redirect_to_a_private_address_is_refused(site: WebSite) -> None:
    """The first hop is allowed by name; the redirect to a private address is checked again."""
    for target in (
        site.url("/article", "127.0.0.1"),
        "http://169.254.169.254/latest/meta-data",
        f"http://[::1]:{site.port}/article",
    ):
        site.redirect("/escape", target)
        tool = fetch_tool(["localhost"])
        block, _, _ = await fetch(tool, site.url("/escape", "localhost"))
        await tool.aclose()
        assert error_code(block) == "url_not_allowed", target
    site.paths.clear()


async def test_allow_list_takes_names_addresses_and_ranges(site: WebSite) -> None:
    for allow in (["127.0.0.1"], ["127.0.0.0/8"], ["localhost"]):
        tool = fetch_tool(allow)
        host = "localhost" if allow == ["localhost"] else "127.0.0.1"
        block, _, is_error = await fetch(tool, site.url("/notes.txt", host))
        await tool.aclose()
        assert not is_error, allow


def test_public_and_private_addresses() -> None:
    import ipaddress

    assert is_public(ipaddress.ip_address("93.184.216.34"))
    assert is_public(ipaddress.ip_address("2606:2800:220:1::1"))
    for private in (
        "127.0.0.1",
        "10.0.0.1",
        "169.254.1.1",
        "::1",
        "::ffff:10.0.0.1",
        "2002:7f00:1::1",
        "255.255.255.255",
        "198.18.0.1",
        "fec0::1",
        "feff:ffff::1",
    ):
        assert not is_public(ipaddress.ip_address(private)), private


async def test_the_checked_address_is_the_one_connected_to(monkeypatch: pytest.MonkeyPatch) -> None:
    """DNS rebinding: the transport connects to the address it checked, keeping the name in
    the Host header and TLS SNI; a later, different DNS answer is never asked for."""
    answers = iter(["93.184.216.34", "127.0.0.1"])
    lookups: list[str] = []

    async def fake_getaddrinfo(host: str, port: int, **_: Any) -> list[Any]:
        lookups.append(host)
        return [(2, 1, 6, "", (next(answers), port))]

    loop = asyncio.get_running_loop()
    monkeypatch.setattr(loop, "getaddrinfo", fake_getaddrinfo)
    seen: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, text="ok")

    transport = GuardedTransport(AddressPolicy(), httpx.MockTransport(record))
    async with httpx.AsyncClient(transport=transport) as client:
        response = await client.get("https://rebind.example/page")
    assert response.status_code == 200
    [sent] = seen
    assert sent.url.host == "93.184.216.34"
    assert sent.headers["host"] == "rebind.example"
    assert sent.extensions["sni_hostname"] == "rebind.example"
    assert lookups == ["rebind.example"]

    # A name that resolves to a private address is refused before any connection.
    async with httpx.AsyncClient(transport=transport) as client:
        with pytest.raises(BlockedAddress):
            await client.get("https://rebind.example/again")
    assert len(seen) == 1
