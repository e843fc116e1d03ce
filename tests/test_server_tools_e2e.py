"""Server tools through `oas`, with the scripted upstream playing a model that uses them:
the client sees Anthropic's blocks, the model sees the results, stream and non-stream."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.mcp_process import McpHttpServer
from tests.support.upstream import Reply, ToolCall
from tests.support.web_site import WebSite

pytestmark = pytest.mark.e2e

FETCH_TOOL = {"type": "web_fetch_20250910", "name": "web_fetch", "max_uses": 3}
SEARCH_TOOL = {"type": "web_search_20250305", "name": "web_search", "max_uses": 8}


@pytest.fixture(scope="module")
def site() -> Iterator[WebSite]:
    server = WebSite().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def mcp_server() -> Iterator[McpHttpServer]:
    server = McpHttpServer("http").start()
    yield server
    server.stop()


@pytest.fixture
def tools_oas(make_oas):
    return make_oas(web_fetch_allow_hosts=["127.0.0.1"], mcp_allow_hosts=["127.0.0.1"])


def _ask(client, stream: bool, **kwargs: Any):
    params = dict(
        model="claude-sonnet-4-5",
        max_tokens=500,
        betas=["web-fetch-2025-09-10", "mcp-client-2025-04-04"],
        **kwargs,
    )
    if not stream:
        return client.beta.messages.create(**params)
    with client.beta.messages.stream(**params) as events:
        return events.get_final_message()


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_web_fetch_runs_in_oas_and_the_model_reads_the_page(tools_oas, upstream, site, stream):
    url = site.url("/to-article")
    upstream.queue(
        Reply(text="Let me read it.", tool_calls=[ToolCall("web_fetch", {"url": url})]),
        Reply(text="The article is about testing."),
    )
    message = _ask(
        tools_oas.client(),
        stream,
        tools=[FETCH_TOOL],
        messages=[{"role": "user", "content": f"Summarise {url}"}],
    )

    kinds = [b.type for b in message.content]
    assert kinds == ["text", "server_tool_use", "web_fetch_tool_result", "text"]
    use, result = message.content[1], message.content[2]
    assert use.name == "web_fetch" and use.input == {"url": url} and use.id.startswith("srvtoolu_")
    assert result.tool_use_id == use.id
    assert result.content.type == "web_fetch_result" and result.content.url.endswith("/article")
    assert message.content[3].text == "The article is about testing."
    assert message.stop_reason == "end_turn"
    assert message.usage.server_tool_use.web_fetch_requests == 1

    first, second = upstream.requests[-2:]
    assert "web_fetch" in [t["function"]["name"] for t in first["tools"]]
    call = second["messages"][-2]
    assert call["role"] == "assistant" and call["tool_calls"][0]["function"]["name"] == "web_fetch"
    answer = second["messages"][-1]
    assert answer["role"] == "tool" and answer["tool_call_id"] == call["tool_calls"][0]["id"]
    assert "Running every request as a flow" in str(answer["content"])  # the page reached the model


def test_a_refused_fetch_is_an_error_block_and_the_loop_goes_on(make_oas, upstream, site):
    guarded = make_oas()  # loopback not allowed: the address guard refuses the fetch
    upstream.queue(
        Reply(tool_calls=[ToolCall("web_fetch", {"url": site.url("/to-article")})]),
        Reply(text="I could not read it."),
    )
    message = _ask(
        guarded.client(),
        False,
        tools=[FETCH_TOOL],
        messages=[{"role": "user", "content": "read it"}],
    )
    result = next(b for b in message.content if b.type == "web_fetch_tool_result")
    assert result.content.type == "web_fetch_tool_result_error"
    assert result.content.error_code == "url_not_allowed"
    assert message.content[-1].text == "I could not read it."


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_mcp_connector_calls_the_servers_tools(tools_oas, upstream, mcp_server, stream):
    upstream.queue(
        Reply(tool_calls=[ToolCall("mcp__calc__add", {"a": 2, "b": 3})]), Reply(text="2 + 3 = 5")
    )
    message = _ask(
        tools_oas.client(),
        stream,
        mcp_servers=[{"type": "url", "url": mcp_server.url, "name": "calc"}],
        messages=[{"role": "user", "content": "What is 2 + 3?"}],
    )
    kinds = [b.type for b in message.content]
    assert kinds == ["mcp_tool_use", "mcp_tool_result", "text"]
    use, result = message.content[0], message.content[1]
    assert (use.server_name, use.name, use.input) == ("calc", "add", {"a": 2, "b": 3})
    assert result.tool_use_id == use.id and result.is_error is False
    assert result.content[0].text == "5"
    assert upstream.requests[-1]["messages"][-1] == {
        "role": "tool",
        "tool_call_id": upstream.requests[-1]["messages"][-2]["tool_calls"][0]["id"],
        "content": "5",
    }


def test_a_client_tool_beside_a_server_tool_goes_back_to_the_client(tools_oas, upstream, site):
    weather = {"name": "get_weather", "input_schema": {"type": "object", "properties": {}}}
    upstream.queue(
        Reply(
            tool_calls=[
                ToolCall("web_fetch", {"url": site.url("/to-article")}),
                ToolCall("get_weather", {}),
            ]
        )
    )
    message = _ask(
        tools_oas.client(),
        False,
        tools=[FETCH_TOOL, weather],
        messages=[{"role": "user", "content": "both"}],
    )
    assert message.stop_reason == "tool_use"
    kinds = [b.type for b in message.content]
    assert "tool_use" in kinds and "web_fetch_tool_result" in kinds
    assert len(upstream.requests) == 1  # the client answers its own tool before we go on


def test_the_loop_is_bounded_and_pauses_the_turn(tools_oas, upstream, site):
    def looping(body):
        return Reply(tool_calls=[ToolCall("web_fetch", {"url": site.url("/to-article")})])

    upstream.default = looping
    tool = {**FETCH_TOOL, "max_uses": 50}
    message = _ask(
        tools_oas.client(),
        False,
        tools=[tool],
        messages=[{"role": "user", "content": "keep reading"}],
    )
    assert message.stop_reason == "pause_turn"
    assert len(upstream.requests) == 10  # the toolbox's iteration bound


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_web_search_results_from_openrouter_become_search_blocks(oas, upstream, stream):
    hit = {
        "type": "url_citation",
        "url_citation": {
            "url": "https://example.com/news",
            "title": "Example News",
            "content": "Fresh news.",
            "start_index": 0,
            "end_index": 10,
        },
    }
    upstream.queue(
        Reply(
            text="Fresh news today.",
            annotations=[hit],
            usage={
                "prompt_tokens": 50,
                "completion_tokens": 5,
                "server_tool_use": {"web_search_requests": 1},
            },
        )
    )
    message = _ask(
        oas.client(),
        stream,
        tools=[SEARCH_TOOL],
        messages=[{"role": "user", "content": "Perform a web search for the query: news"}],
    )
    kinds = [b.type for b in message.content]
    assert "server_tool_use" in kinds and "web_search_tool_result" in kinds
    use = next(b for b in message.content if b.type == "server_tool_use")
    assert use.name == "web_search" and use.input == {"query": "news"}
    result = next(b for b in message.content if b.type == "web_search_tool_result")
    assert result.content[0].url == "https://example.com/news"
    cited = [c for b in message.content if b.type == "text" for c in (b.citations or [])]
    assert cited and cited[0].url == "https://example.com/news"
    assert message.usage.server_tool_use.web_search_requests == 1
    sent = upstream.requests[-1]
    assert {"type": "openrouter:web_search", "parameters": {"max_uses": 8}} in sent["tools"]
