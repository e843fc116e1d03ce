"""Server-tool blocks from earlier turns reach the model as text, not silence."""

from __future__ import annotations

from src.tasks.server_tools.history import SERVER_BLOCK_TYPES, prior_block_text
from src.tasks.server_tools.search_blocks import Hit, result_block


def test_each_kind_of_prior_block_is_readable() -> None:
    search = result_block("srvtoolu_1", [Hit("https://a.example/", "A page", "the snippet")])
    fetch = {
        "type": "web_fetch_tool_result",
        "tool_use_id": "srvtoolu_2",
        "content": {
            "type": "web_fetch_result",
            "url": "https://b.example/",
            "retrieved_at": "x",
            "content": {
                "type": "document",
                "title": "B",
                "source": {"type": "text", "media_type": "text/plain", "data": "page text"},
            },
        },
    }
    texts = {
        "use": prior_block_text(
            {
                "type": "server_tool_use",
                "id": "s",
                "name": "web_fetch",
                "input": {"url": "https://b.example/"},
            }
        ),
        "search": prior_block_text(search),
        "fetch": prior_block_text(fetch),
        "fetch_error": prior_block_text(
            {
                "type": "web_fetch_tool_result",
                "tool_use_id": "s",
                "content": {"type": "web_fetch_tool_result_error", "error_code": "url_not_allowed"},
            }
        ),
        "mcp_use": prior_block_text(
            {
                "type": "mcp_tool_use",
                "id": "m",
                "name": "add",
                "server_name": "calc",
                "input": {"a": 1},
            }
        ),
        "mcp_result": prior_block_text(
            {
                "type": "mcp_tool_result",
                "tool_use_id": "m",
                "is_error": False,
                "content": [{"type": "text", "text": "2"}],
            }
        ),
    }
    assert texts["use"] == '[web_fetch call: {"url":"https://b.example/"}]'
    assert "A page (https://a.example/): the snippet" in texts["search"]
    assert texts["fetch"] == "[fetched https://b.example/ (B)]\npage text"
    assert texts["fetch_error"] == "[web fetch failed: url_not_allowed]"
    assert texts["mcp_use"] == '[MCP call calc.add: {"a":1}]'
    assert texts["mcp_result"] == "[MCP result]\n2"
    assert prior_block_text({"type": "text", "text": "x"}) is None
    assert "mcp_tool_result" in SERVER_BLOCK_TYPES
