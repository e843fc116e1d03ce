"""Web search: Claude Code's WebSearch request mapped onto OpenRouter's web search, and
OpenRouter's `url_citation` annotations turned into the blocks Anthropic's API sends,
checked with the official SDK (its types, and its stream accumulator over our SSE)."""

from __future__ import annotations

from typing import Any

import anthropic
import httpx2
import orjson
import pytest
from anthropic.types.beta import (
    BetaServerToolUseBlock,
    BetaTextBlock,
    BetaWebSearchToolResultBlock,
)

from src.core.settings import Settings
from src.schemas.anthropic import MessagesRequest
from src.tasks.conversion.request import to_openai
from src.tasks.conversion.stream import StreamConverter
from src.tasks.routing import map_model
from src.tasks.server_tools import search_blocks, web_search
from src.tasks.server_tools.web_search import WebSearchStream

# What Claude Code's WebSearch tool sends (read from its 2.0.77 source: a one-turn request
# with no client tools and this single server tool, `max_uses: 8`, streamed).
CLAUDE_CODE_WEB_SEARCH = {
    "model": "claude-sonnet-4-5-20250929",
    "max_tokens": 32000,
    "stream": True,
    "system": [
        {"type": "text", "text": "You are Claude Code, Anthropic's official CLI for Claude."},
        {"type": "text", "text": "You are an assistant for performing a web search tool use"},
    ],
    "messages": [
        {
            "role": "user",
            "content": [
                {
                    "type": "text",
                    "text": "Perform a web search for the query: prefect 3 release notes",
                },
            ],
        }
    ],
    "tools": [{"type": "web_search_20250305", "name": "web_search", "max_uses": 8}],
    "metadata": {"user_id": "user_abc_account__session_123"},
    "temperature": 1,
}

ANSWER = "Prefect 3.9 adds faster task runs. The release also fixes bugs."
ANNOTATIONS = [
    {
        "type": "url_citation",
        "url_citation": {
            "url": "https://docs.prefect.io/v3/release-notes",
            "title": "Release notes",
            "content": "Prefect 3.9 makes task runs faster.",
            "start_index": 0,
            "end_index": 34,
        },
    },
    {
        "type": "url_citation",
        "url_citation": {
            "url": "https://github.com/PrefectHQ/prefect/releases",
            "title": "Releases",
            "content": "Bug fixes in 3.9.1",
            "start_index": 35,
            "end_index": 63,
        },
    },
]


def claude_code_request(**changes: Any) -> MessagesRequest:
    body = orjson.loads(orjson.dumps(CLAUDE_CODE_WEB_SEARCH))
    body.update(changes)
    return MessagesRequest.model_validate(body)


def upstream_body(request: MessagesRequest, settings: Settings) -> dict[str, Any]:
    body = to_openai(request, map_model(request.model, settings))
    web_search.apply_web_search(body, request, settings)
    return body


# -- request side ----------------------------------------------------------------------


def test_claude_code_request_uses_openrouters_web_search_tool() -> None:
    body = upstream_body(claude_code_request(), Settings())
    assert body["tools"] == [{"type": "openrouter:web_search", "parameters": {"max_uses": 8}}]
    assert "plugins" not in body
    assert not any(t.get("type") == "function" for t in body["tools"])


def test_options_carry_over_to_the_server_tool() -> None:
    request = claude_code_request(
        tools=[
            {
                "type": "web_search_20250305",
                "name": "web_search",
                "max_uses": 3,
                "blocked_domains": ["pinterest.com"],
                "user_location": {
                    "type": "approximate",
                    "city": "Berlin",
                    "country": "DE",
                    "timezone": "Europe/Berlin",
                    "region": None,
                },
            }
        ],
        tool_choice={"type": "tool", "name": "web_search"},
    )
    body = upstream_body(request, Settings(web_search_engine="exa", web_search_max_results=4))
    assert body["tools"] == [
        {
            "type": "openrouter:web_search",
            "parameters": {
                "engine": "exa",
                "max_results": 4,
                "max_uses": 3,
                "excluded_domains": ["pinterest.com"],
                "user_location": {
                    "type": "approximate",
                    "city": "Berlin",
                    "country": "DE",
                    "timezone": "Europe/Berlin",
                },
            },
        }
    ]
    assert "tool_choice" not in body  # no upstream function is called web_search


def test_plugin_mode_and_off() -> None:
    request = claude_code_request(
        tools=[
            {"type": "web_search_20250305", "name": "web_search", "allowed_domains": ["python.org"]}
        ]
    )
    body = upstream_body(request, Settings(web_search="plugin"))
    assert body["plugins"] == [{"id": "web", "include_domains": ["python.org"]}]
    assert "tools" not in body
    body = upstream_body(request, Settings(web_search="off"))
    assert "plugins" not in body and "tools" not in body


def test_client_tools_stay_beside_the_search_tool() -> None:
    request = claude_code_request(
        tools=[
            {"name": "Read", "description": "read", "input_schema": {"type": "object"}},
            {"type": "web_search_20250305", "name": "web_search"},
        ]
    )
    body = upstream_body(request, Settings())
    assert [t.get("function", {}).get("name") or t["type"] for t in body["tools"]] == [
        "Read",
        "openrouter:web_search",
    ]


def test_query_is_taken_from_claude_codes_prompt() -> None:
    assert web_search.search_query(claude_code_request()) == "prefect 3 release notes"
    plain = claude_code_request(messages=[{"role": "user", "content": "weather in Paris?"}])
    assert web_search.search_query(plain) == "weather in Paris?"


# -- non-stream ------------------------------------------------------------------------


def converted_message(text: str) -> dict[str, Any]:
    return {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "claude",
        "content": [{"type": "text", "text": text}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {
            "input_tokens": 10,
            "output_tokens": 5,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
        },
    }


def test_annotations_become_search_blocks_and_citations() -> None:
    completion = {
        "choices": [
            {
                "message": {"role": "assistant", "content": ANSWER, "annotations": ANNOTATIONS},
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": 10,
            "completion_tokens": 5,
            "server_tool_use": {"web_search_requests": 2},
        },
    }
    message = web_search.finish_message(
        converted_message(ANSWER), completion, "prefect 3 release notes", "srvtoolu_01"
    )
    use, result, *texts = message["content"]
    assert BetaServerToolUseBlock.model_validate(use).input == {"query": "prefect 3 release notes"}
    assert use == {
        "type": "server_tool_use",
        "id": "srvtoolu_01",
        "name": "web_search",
        "input": {"query": "prefect 3 release notes"},
    }
    parsed = BetaWebSearchToolResultBlock.model_validate(result)
    assert parsed.tool_use_id == "srvtoolu_01"
    assert [(r.url, r.title) for r in parsed.content] == [
        ("https://docs.prefect.io/v3/release-notes", "Release notes"),
        ("https://github.com/PrefectHQ/prefect/releases", "Releases"),
    ]
    blocks = [BetaTextBlock.model_validate(t) for t in texts]
    assert "".join(b.text for b in blocks) == ANSWER  # no text lost or repeated
    cited = [b for b in blocks if b.citations]
    assert [b.text for b in cited] == [
        "Prefect 3.9 adds faster task runs.",
        "The release also fixes bugs.",
    ]
    first = cited[0].citations[0]
    assert first.type == "web_search_result_location"
    assert first.url == "https://docs.prefect.io/v3/release-notes"
    assert first.cited_text == "Prefect 3.9 makes task runs faster."
    assert message["usage"]["server_tool_use"] == {
        "web_search_requests": 2,
        "web_fetch_requests": 0,
    }
    # The opaque fields carry the result back in a later turn.
    assert search_blocks.decode_opaque(parsed.content[0].encrypted_content) == {
        "url": "https://docs.prefect.io/v3/release-notes",
        "title": "Release notes",
        "snippet": "Prefect 3.9 makes task runs faster.",
    }


def test_no_annotations_no_search_blocks() -> None:
    completion = {
        "choices": [{"message": {"role": "assistant", "content": "I know this."}}],
        "usage": {},
    }
    message = web_search.finish_message(converted_message("I know this."), completion, "q", "x")
    assert message["content"] == [{"type": "text", "text": "I know this."}]
    assert "server_tool_use" not in message["usage"]


def test_annotations_without_ranges_cite_the_whole_answer() -> None:
    flat = [{"type": "url_citation", "url": "https://a.example/", "title": "A"}]
    completion = {"choices": [{"message": {"content": "Answer.", "annotations": flat}}]}
    message = web_search.finish_message(converted_message("Answer."), completion, "q", "x")
    *_, text = message["content"]
    assert text["text"] == "Answer."
    assert [c["url"] for c in text["citations"]] == ["https://a.example/"]
    assert message["usage"]["server_tool_use"] == {
        "web_search_requests": 1,
        "web_fetch_requests": 0,
    }


# -- stream ----------------------------------------------------------------------------


def chunk(delta: dict[str, Any], finish: str | None = None, usage: Any = None) -> dict[str, Any]:
    out: dict[str, Any] = {"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    if usage is not None:
        out["usage"] = usage
    return out


def convert_stream_with_search(chunks: list[dict[str, Any]], query: str) -> bytes:
    """The integration recipe of `WebSearchStream`, applied to the real StreamConverter."""
    converter = StreamConverter("claude-sonnet-4-5")
    search = WebSearchStream(query)
    out = converter.start()
    for item in chunks:
        delta = (item.get("choices") or [{}])[0].get("delta") or {}
        if new := search.feed(delta):
            if converter.open_kind == "text":
                for hit in new:
                    out += converter._delta(search.citation_delta(hit))
            out += converter._close()
            out += search.block_events(converter.index + 1, "srvtoolu_01", new)
            converter.index += 2
        out += converter.feed(item)
    return out + converter.finish()


def sdk_final_message(sse_bytes: bytes) -> Any:
    """What the official SDK makes of our SSE, through its public streaming API."""
    transport = httpx2.MockTransport(
        lambda request: httpx2.Response(
            200, headers={"content-type": "text/event-stream"}, content=sse_bytes
        )
    )
    client = anthropic.Anthropic(
        api_key="test", base_url="http://oas.test", http_client=httpx2.Client(transport=transport)
    )
    with client.beta.messages.stream(
        model="claude-sonnet-4-5", max_tokens=100, messages=[{"role": "user", "content": "q"}]
    ) as stream:
        return stream.get_final_message()


@pytest.mark.parametrize("where", ["first", "last"])
def test_stream_shows_the_search_whenever_annotations_arrive(where: str) -> None:
    text_chunks = [
        chunk({"role": "assistant", "content": "Prefect 3.9 adds "}),
        chunk({"content": "faster task runs."}),
    ]
    notes = chunk({"annotations": ANNOTATIONS})
    ending = chunk({}, "stop", {"prompt_tokens": 5, "completion_tokens": 7})
    chunks = [notes, *text_chunks, ending] if where == "first" else [*text_chunks, notes, ending]
    message = sdk_final_message(convert_stream_with_search(chunks, "prefect 3 release notes"))

    kinds = [b.type for b in message.content]
    use = next(b for b in message.content if b.type == "server_tool_use")
    result = next(b for b in message.content if b.type == "web_search_tool_result")
    assert use.name == "web_search" and use.input == {"query": "prefect 3 release notes"}
    assert result.tool_use_id == use.id
    assert [r.url for r in result.content] == [
        "https://docs.prefect.io/v3/release-notes",
        "https://github.com/PrefectHQ/prefect/releases",
    ]
    text = "".join(b.text for b in message.content if b.type == "text")
    assert text == "Prefect 3.9 adds faster task runs."
    if where == "first":
        assert kinds == ["server_tool_use", "web_search_tool_result", "text"]
    else:  # the streamed text already went out; its block gets the citations
        assert kinds == ["text", "server_tool_use", "web_search_tool_result"]
        assert [c.url for c in message.content[0].citations] == [
            "https://docs.prefect.io/v3/release-notes",
            "https://github.com/PrefectHQ/prefect/releases",
        ]


def test_stream_search_count() -> None:
    search = WebSearchStream("q")
    assert search.feed({"content": "x"}) == []
    assert len(search.feed({"annotations": ANNOTATIONS})) == 2
    assert search.feed({"annotations": ANNOTATIONS[:1]}) == []  # seen already
    assert search.requests(None) == 1
    assert search.requests({"server_tool_use": {"web_search_requests": 3}}) == 3
    usage = web_search.add_server_tool_usage({"input_tokens": 1}, search.requests(None))
    assert usage == {
        "input_tokens": 1,
        "server_tool_use": {"web_search_requests": 1, "web_fetch_requests": 0},
    }
