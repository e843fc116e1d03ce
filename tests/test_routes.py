"""Routing rules and the model table, end to end through the Anthropic SDK.

Each request goes through a real `oas` whose OAS_CONFIG holds the rules below; the scripted
upstream shows which model was asked, the run says which rule chose it and why.
"""

from __future__ import annotations

import base64

import pytest

from src.services import tokenizer
from tests.support.runs import EndedRuns
from tests.support.upstream import Reply

CONFIG = """
models:
  "claude-haiku-*": google/gemini-2.5-flash
  "claude-opus-*": openai/gpt-5.1
routes:
  - name: ci-client
    when: {client: ci}
    model: ci/model
  - name: thinking
    when: {thinking: true}
    model: deepseek/deepseek-r1
    provider: {order: [deepinfra], allow_fallbacks: false}
  - name: images
    when: {images: true}
    model: openai/gpt-4o
  - name: documents
    when: {documents: true}
    model: google/gemini-2.5-pro
  - name: web
    when: {web_search: true}
    model: perplexity/sonar
  - name: bash-tools
    when: {tools: Bash}
    model: qwen/qwen3-coder
  - name: any-tools
    when: {tools: true}
    model: openai/gpt-4.1
  - name: streaming-sonnet
    when: {stream: true, model: "claude-sonnet-*"}
    model: anthropic/claude-sonnet-4.5
  - name: long
    when: {input_tokens_over: 3000}
    model: google/gemini-2.5-pro-long
    fallbacks: [moonshotai/kimi-k2]
"""

PNG = base64.b64encode(
    bytes.fromhex(
        "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
        "1f15c4890000000d49444154789c63000100000500010d0a2db40000000049454e44ae426082"
    )
).decode()
TOOL = {
    "name": "Bash",
    "description": "run a command",
    "input_schema": {"type": "object", "properties": {"command": {"type": "string"}}},
}
OTHER_TOOL = {**TOOL, "name": "Read"}


@pytest.fixture
def routed(make_oas, tmp_path):
    path = tmp_path / "oas.yaml"
    path.write_text(CONFIG)
    instance = make_oas(config_file=path)
    instance.ended = EndedRuns(instance)
    return instance


def _user(*content):
    return [{"role": "user", "content": list(content) or "hello"}]


CASES = {
    "default": ({"model": "claude-sonnet-4-5"}, "anthropic/claude-sonnet-4", "route:default"),
    "models table": ({"model": "claude-haiku-4-5"}, "google/gemini-2.5-flash", "route:models"),
    "model glob": (
        {"model": "claude-sonnet-4-5", "stream": True},
        "anthropic/claude-sonnet-4.5",
        "route:streaming-sonnet",
    ),
    "thinking": (
        {
            "model": "claude-sonnet-4-5",
            "max_tokens": 4000,
            "thinking": {"type": "enabled", "budget_tokens": 2000},
        },
        "deepseek/deepseek-r1",
        "route:thinking",
    ),
    "images": (
        {
            "model": "claude-sonnet-4-5",
            "messages": _user(
                {
                    "type": "image",
                    "source": {"type": "base64", "media_type": "image/png", "data": PNG},
                },
                {"type": "text", "text": "what is this?"},
            ),
        },
        "openai/gpt-4o",
        "route:images",
    ),
    "an image a tool returned": (
        {
            "model": "claude-sonnet-4-5",
            "tools": [TOOL],
            "messages": [
                {"role": "user", "content": "look at shot.png"},
                {
                    "role": "assistant",
                    "content": [
                        {
                            "type": "tool_use",
                            "id": "toolu_1",
                            "name": "Bash",
                            "input": {"command": "cat shot.png"},
                        }
                    ],
                },
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "tool_result",
                            "tool_use_id": "toolu_1",
                            "content": [
                                {
                                    "type": "image",
                                    "source": {
                                        "type": "base64",
                                        "media_type": "image/png",
                                        "data": PNG,
                                    },
                                }
                            ],
                        }
                    ],
                },
            ],
        },
        "openai/gpt-4o",
        "route:images",
    ),
    "documents": (
        {
            "model": "claude-opus-4-1",
            "messages": _user(
                {
                    "type": "document",
                    "source": {"type": "text", "media_type": "text/plain", "data": "a short note"},
                },
                {"type": "text", "text": "summarize"},
            ),
        },
        "google/gemini-2.5-pro",
        "route:documents",
    ),
    "web search": (
        {
            "model": "claude-sonnet-4-5",
            "tools": [{"type": "web_search_20250305", "name": "web_search", "max_uses": 1}],
        },
        "perplexity/sonar",
        "route:web",
    ),
    "a tool by name": (
        {"model": "claude-sonnet-4-5", "tools": [OTHER_TOOL, TOOL]},
        "qwen/qwen3-coder",
        "route:bash-tools",
    ),
    "any tool": (
        {"model": "claude-sonnet-4-5", "tools": [OTHER_TOOL]},
        "openai/gpt-4.1",
        "route:any-tools",
    ),
    "stream but not sonnet": (
        {"model": "claude-opus-4-1", "stream": True},
        "openai/gpt-5.1",
        "route:models",
    ),
    "input tokens over": (
        {
            "model": "claude-sonnet-4-5",
            "messages": _user({"type": "text", "text": "lorem ipsum " * 2000}),
        },
        "google/gemini-2.5-pro-long",
        "route:long",
    ),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_each_condition_routes_to_its_model(routed, upstream, case):
    fields, upstream_model, tag = case
    request = {"max_tokens": 100, "messages": _user(), **fields}
    client = routed.client()
    if request.pop("stream", False):
        with client.messages.stream(**request) as stream:
            message = stream.get_final_message()
    else:
        message = client.messages.create(**request)
    assert upstream.requests[-1]["model"] == upstream_model
    assert message.model == request["model"]  # the client still sees the name it asked for
    run = routed.ended.last()
    assert tag in run.tags
    assert run.summary["route"].startswith(tag.removeprefix("route:"))


def test_the_summary_says_which_conditions_matched(routed, upstream):
    with routed.client().messages.stream(
        model="claude-sonnet-4-5", max_tokens=50, messages=_user()
    ) as stream:
        stream.until_done()
    assert routed.ended.last().summary["route"] == (
        "streaming-sonnet (model: claude-sonnet-*, stream: true)"
    )
    routed.client().messages.create(model="claude-haiku-4-5", max_tokens=50, messages=_user())
    assert routed.ended.last().summary["route"] == "models (model: claude-haiku-*)"


def test_a_route_sends_its_own_provider_preferences(routed, upstream):
    routed.client().messages.create(
        model="claude-sonnet-4-5",
        max_tokens=4000,
        messages=_user(),
        thinking={"type": "enabled", "budget_tokens": 2000},
    )
    assert upstream.requests[-1]["provider"] == {"order": ["deepinfra"], "allow_fallbacks": False}
    routed.client().messages.create(model="claude-sonnet-4-5", max_tokens=50, messages=_user())
    assert "provider" not in upstream.requests[-1]


def test_a_route_falls_back_to_its_own_fallbacks(routed, upstream):
    upstream.queue(Reply(status=503, error={"message": "overloaded", "code": 503}))
    message = routed.client().messages.create(
        model="claude-sonnet-4-5",
        max_tokens=50,
        messages=_user({"type": "text", "text": "lorem ipsum " * 2000}),
    )
    assert [r["model"] for r in upstream.requests] == [
        "google/gemini-2.5-pro-long",
        "moonshotai/kimi-k2",
    ]
    assert message.model == "claude-sonnet-4-5"


def test_tokens_are_counted_only_when_a_rule_needs_them(routed, upstream):
    before = tokenizer.cache.hits + tokenizer.cache.misses
    # An image request is decided by the `images` rule, before the `long` rule's count.
    routed.client().messages.create(
        model="claude-sonnet-4-5",
        max_tokens=50,
        messages=_user(
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
            {"type": "text", "text": "lorem ipsum " * 2000},
        ),
    )
    assert tokenizer.cache.hits + tokenizer.cache.misses == before
    # A plain request reaches the `long` rule: it is counted, as count_tokens counts it.
    body = {
        "model": "claude-sonnet-4-5",
        "max_tokens": 50,
        "messages": _user({"type": "text", "text": "lorem ipsum " * 200}),
    }
    routed.client().messages.create(**body)
    assert tokenizer.cache.hits + tokenizer.cache.misses > before
    counted = (
        routed.client()
        .messages.count_tokens(model=body["model"], messages=body["messages"])
        .input_tokens
    )
    assert counted <= 3000 and upstream.requests[-1]["model"] == "anthropic/claude-sonnet-4"


def test_a_client_condition_routes_that_clients_requests(make_oas, upstream, tmp_path):
    path = tmp_path / "oas.yaml"
    path.write_text(
        CONFIG + "clients:\n  - {name: ci, key: ci-key-123}\n  - {name: dev, key: dev-key-456}\n"
    )
    instance = make_oas(config_file=path)
    ended = EndedRuns(instance)
    import anthropic

    for key, model, client in (
        ("ci-key-123", "ci/model", "client:ci"),
        ("dev-key-456", "anthropic/claude-sonnet-4", "client:dev"),
    ):
        sdk = anthropic.Anthropic(base_url=instance.url, api_key=key, max_retries=0)
        sdk.messages.create(model="claude-sonnet-4-5", max_tokens=50, messages=_user())
        assert upstream.requests[-1]["model"] == model
        assert client in ended.last().tags
