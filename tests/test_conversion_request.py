"""convert-request as plain functions: every part of a Messages request, as OpenRouter gets it."""

from __future__ import annotations

import base64

import pytest

from src.core.settings import Settings
from src.schemas.anthropic import MessagesRequest
from src.tasks.conversion.request import honours_cache_control, to_openai
from src.tasks.conversion.thinking import redacted_data_for, signature_for
from src.tasks.conversion.tool_ids import new_tool_use_id, upstream_id_of
from src.tasks.routing import Route

OPENAI = Route("claude-sonnet-4-5", "openai/gpt-4o")
CLAUDE = Route("claude-sonnet-4-5", "anthropic/claude-sonnet-4")
PDF = base64.b64encode(b"%PDF-1.4 tiny").decode()
PNG = base64.b64encode(b"\x89PNG tiny").decode()
CACHE = {"type": "ephemeral"}


def body(route: Route = OPENAI, settings: Settings | None = None, **fields) -> dict:
    request = {
        "model": "claude-sonnet-4-5",
        "max_tokens": 100,
        "messages": [{"role": "user", "content": "Hi"}],
        **fields,
    }
    return to_openai(MessagesRequest.model_validate(request), route, settings)


def user(*blocks) -> dict:
    return {"role": "user", "content": list(blocks)}


def assistant(*blocks) -> dict:
    return {"role": "assistant", "content": list(blocks)}


# -- system ------------------------------------------------------------------------------


def test_system_as_string_blocks_and_system_turns_keep_their_place():
    sent = body(
        system=[{"type": "text", "text": "Be brief."}, {"type": "text", "text": "Be kind."}],
        messages=[
            {"role": "user", "content": "a"},
            {"role": "system", "content": "Now answer in French."},
            {"role": "user", "content": "b"},
        ],
    )["messages"]
    assert sent == [
        {"role": "system", "content": "Be brief.\n\nBe kind."},
        {"role": "user", "content": "a"},
        {"role": "system", "content": "Now answer in French."},
        {"role": "user", "content": "b"},
    ]


def test_cache_control_reaches_models_that_honour_it_and_no_others():
    request = {
        "system": [{"type": "text", "text": "Long prompt", "cache_control": CACHE}],
        "messages": [user({"type": "text", "text": "q", "cache_control": CACHE})],
        "tools": [{"name": "t", "input_schema": {"type": "object"}, "cache_control": CACHE}],
        "cache_control": CACHE,
    }
    claude = body(CLAUDE, **request)
    assert claude["messages"][0] == {
        "role": "system",
        "content": [{"type": "text", "text": "Long prompt", "cache_control": CACHE}],
    }
    assert claude["messages"][1]["content"] == [
        {"type": "text", "text": "q", "cache_control": CACHE}
    ]
    assert claude["tools"][0]["cache_control"] == CACHE
    assert claude["cache_control"] == CACHE

    openai = body(OPENAI, **request)
    assert openai["messages"][0] == {"role": "system", "content": "Long prompt"}
    assert openai["messages"][1]["content"] == "q"
    assert "cache_control" not in openai["tools"][0] and "cache_control" not in openai


@pytest.mark.parametrize(
    "model, honoured",
    [
        ("anthropic/claude-sonnet-4", True),
        ("~anthropic/claude-sonnet-latest", True),
        ("google/gemini-2.5-pro", True),
        ("qwen/qwen3-coder", True),
        ("openai/gpt-4o", False),
        ("deepseek/deepseek-chat", False),
        ("x-ai/grok-4", False),
    ],
)
def test_which_models_get_cache_control(model, honoured):
    assert honours_cache_control(model) is honoured
    assert honours_cache_control(model, "never") is False
    assert honours_cache_control(model, "always") is True


# -- user content ------------------------------------------------------------------------


def test_images_from_base64_and_url():
    sent = body(
        messages=[
            user(
                {"type": "text", "text": "What is this?"},
                {
                    "type": "image",
                    "source": {"type": "base64", "media_type": "image/png", "data": PNG},
                },
                {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
            )
        ]
    )["messages"]
    assert sent[0]["content"] == [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
    ]


def test_documents_become_file_parts_or_text_with_title_and_context():
    sent = body(
        messages=[
            user(
                {
                    "type": "document",
                    "title": "Report",
                    "context": "Q3 figures",
                    "source": {"type": "base64", "media_type": "application/pdf", "data": PDF},
                },
                {"type": "document", "source": {"type": "url", "url": "https://example.com/a.pdf"}},
                {
                    "type": "document",
                    "title": "Notes",
                    "source": {"type": "text", "media_type": "text/plain", "data": "plain notes"},
                },
                {
                    "type": "document",
                    "context": "pasted",
                    "source": {
                        "type": "content",
                        "content": [{"type": "text", "text": "part one"}],
                    },
                },
                {"type": "text", "text": "Summarise."},
            )
        ]
    )["messages"]
    assert sent[0]["content"] == [
        {"type": "text", "text": "Document title: Report\nDocument context: Q3 figures"},
        {
            "type": "file",
            "file": {"filename": "Report.pdf", "file_data": f"data:application/pdf;base64,{PDF}"},
        },
        {
            "type": "file",
            "file": {"filename": "document.pdf", "file_data": "https://example.com/a.pdf"},
        },
        {"type": "text", "text": "Document title: Notes\n\nplain notes"},
        {"type": "text", "text": "Document context: pasted"},
        {"type": "text", "text": "part one"},
        {"type": "text", "text": "Summarise."},
    ]


def test_search_results_are_text_naming_their_source():
    sent = body(
        messages=[
            user(
                {
                    "type": "search_result",
                    "source": "https://docs.example.com/x",
                    "title": "X docs",
                    "content": [{"type": "text", "text": "X does Y."}],
                }
            )
        ]
    )
    assert sent["messages"][0]["content"] == (
        "Search result: X docs\nSource: https://docs.example.com/x\n\nX does Y."
    )


def test_blocks_without_an_upstream_form_are_dropped_not_refused():
    sent = body(
        messages=[
            user(
                {"type": "image", "source": {"type": "file", "file_id": "file_1"}},
                {"type": "container_upload", "file_id": "file_2"},
                {"type": "text", "text": "still here"},
            )
        ]
    )
    assert sent["messages"] == [{"role": "user", "content": "still here"}]


# -- tools -------------------------------------------------------------------------------


def test_tools_keep_their_schema_and_extras_are_tolerated():
    sent = body(
        tools=[
            {
                "name": "read",
                "description": "Read a file",
                "strict": True,
                "defer_loading": True,
                "eager_input_streaming": True,
                "input_schema": {"type": "object", "properties": {"path": {"type": "string"}}},
                "input_examples": [{"path": "a.py"}],
            },
            {"type": "web_search_20250305", "name": "web_search", "max_uses": 3},
            {"type": "mcp_toolset", "mcp_server_name": "docs"},
            {"type": "custom", "name": "noschema"},
        ]
    )
    assert [t["function"]["name"] for t in sent["tools"]] == ["read", "noschema"]
    read = sent["tools"][0]["function"]
    assert read["parameters"] == {"type": "object", "properties": {"path": {"type": "string"}}}
    assert read["description"] == 'Read a file\n\nExample inputs:\n{"path":"a.py"}'
    assert sent["tools"][1]["function"]["parameters"] == {"type": "object", "properties": {}}


@pytest.mark.parametrize(
    "choice, expected",
    [
        ({"type": "auto"}, {"tool_choice": "auto"}),
        ({"type": "any"}, {"tool_choice": "required"}),
        ({"type": "none"}, {"tool_choice": "none"}),
        (
            {"type": "tool", "name": "read"},
            {"tool_choice": {"type": "function", "function": {"name": "read"}}},
        ),
        (
            {"type": "auto", "disable_parallel_tool_use": True},
            {"tool_choice": "auto", "parallel_tool_calls": False},
        ),
        ({"type": "tool", "name": "web_search"}, {"tool_choice": "required"}),
    ],
)
def test_tool_choice(choice, expected):
    sent = body(tools=[{"name": "read", "input_schema": {"type": "object"}}], tool_choice=choice)
    assert {k: sent[k] for k in ("tool_choice", "parallel_tool_calls") if k in sent} == expected


def test_tool_choice_without_client_tools_is_left_out():
    sent = body(
        tools=[{"type": "web_search_20250305", "name": "web_search"}], tool_choice={"type": "any"}
    )
    assert "tools" not in sent and "tool_choice" not in sent


def test_tool_use_and_results_in_order_with_errors_images_and_text_beside():
    first, second = new_tool_use_id("call_A"), new_tool_use_id()
    sent = body(
        messages=[
            {"role": "user", "content": "Look at a.png and b.txt"},
            assistant(
                {"type": "text", "text": "Reading both."},
                {"type": "tool_use", "id": first, "name": "read", "input": {"path": "a.png"}},
                {"type": "tool_use", "id": second, "name": "read", "input": {"path": "b.txt"}},
            ),
            user(
                {
                    "type": "tool_result",
                    "tool_use_id": first,
                    "content": [
                        {"type": "text", "text": "an image:"},
                        {
                            "type": "image",
                            "source": {"type": "base64", "media_type": "image/png", "data": PNG},
                        },
                    ],
                },
                {
                    "type": "tool_result",
                    "tool_use_id": second,
                    "is_error": True,
                    "content": "No such file",
                },
                {"type": "text", "text": "Carry on."},
            ),
        ]
    )["messages"]
    assert sent[1] == {
        "role": "assistant",
        "content": "Reading both.",
        "tool_calls": [
            {
                "id": "call_A",
                "type": "function",
                "function": {"name": "read", "arguments": '{"path":"a.png"}'},
            },
            {
                "id": second,
                "type": "function",
                "function": {"name": "read", "arguments": '{"path":"b.txt"}'},
            },
        ],
    }
    assert sent[2] == {"role": "tool", "tool_call_id": "call_A", "content": "an image:"}
    assert sent[3] == {"role": "tool", "tool_call_id": second, "content": "Error: No such file"}
    assert sent[4] == {
        "role": "user",
        "content": [
            {"type": "text", "text": "Content returned by the read tool call:"},
            {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
            {"type": "text", "text": "Carry on."},
        ],
    }


def test_empty_tool_results_are_not_sent_empty():
    tool_id = new_tool_use_id()
    sent = body(
        messages=[
            {"role": "user", "content": "x"},
            assistant({"type": "tool_use", "id": tool_id, "name": "t", "input": {}}),
            user({"type": "tool_result", "tool_use_id": tool_id}),
        ]
    )["messages"]
    assert sent[2] == {"role": "tool", "tool_call_id": tool_id, "content": "(no output)"}


def test_upstream_ids_repeated_across_turns_are_sent_once_each():
    # Some providers call every first tool call `call_0`: two turns, same upstream id.
    a, b = new_tool_use_id("call_0"), new_tool_use_id("call_0")
    assert upstream_id_of(a) == upstream_id_of(b) == "call_0" and a != b
    sent = body(
        messages=[
            {"role": "user", "content": "x"},
            assistant({"type": "tool_use", "id": a, "name": "t", "input": {}}),
            user({"type": "tool_result", "tool_use_id": a, "content": "1"}),
            assistant({"type": "tool_use", "id": b, "name": "t", "input": {}}),
            user({"type": "tool_result", "tool_use_id": b, "content": "2"}),
        ]
    )["messages"]
    ids = [
        sent[1]["tool_calls"][0]["id"],
        sent[2]["tool_call_id"],
        sent[3]["tool_calls"][0]["id"],
        sent[4]["tool_call_id"],
    ]
    assert ids == ["call_0", "call_0", b, b]


def test_ids_from_anthropic_itself_pass_through():
    assert upstream_id_of("toolu_01A09q90qw90lq917835lq9") is None
    sent = body(
        messages=[
            {"role": "user", "content": "x"},
            assistant(
                {
                    "type": "tool_use",
                    "id": "toolu_01A09q90qw90lq917835lq9",
                    "name": "t",
                    "input": {},
                }
            ),
            user(
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_01A09q90qw90lq917835lq9",
                    "content": "ok",
                }
            ),
        ]
    )["messages"]
    assert (
        sent[2]["tool_call_id"] == sent[1]["tool_calls"][0]["id"] == "toolu_01A09q90qw90lq917835lq9"
    )


# -- thinking ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fields, reasoning",
    [
        ({"thinking": {"type": "enabled", "budget_tokens": 2048}}, {"max_tokens": 2048}),
        ({"thinking": {"type": "adaptive"}}, {"enabled": True}),
        (
            {"thinking": {"type": "adaptive"}, "output_config": {"effort": "high"}},
            {"effort": "high"},
        ),
        ({"output_config": {"effort": "max"}}, {"effort": "xhigh"}),
        ({"thinking": {"type": "disabled"}}, {"enabled": False}),
        ({"thinking": {"type": "between_tools"}}, {"enabled": True}),
        ({}, None),
    ],
)
def test_thinking_and_effort_become_reasoning(fields, reasoning):
    assert body(**fields).get("reasoning") == reasoning


def test_thinking_blocks_go_back_as_reasoning_details_with_their_metadata():
    signed = signature_for(
        {"type": "reasoning.text", "signature": "sig-1", "format": "anthropic-claude-v1"}
    )
    encrypted = {
        "type": "reasoning.encrypted",
        "data": "opaque",
        "format": "google-gemini-v1",
        "id": "tool_1",
    }
    tool_id = new_tool_use_id("tool_1")
    sent = body(
        messages=[
            {"role": "user", "content": "x"},
            assistant(
                {"type": "thinking", "thinking": "Let me think.", "signature": signed},
                {"type": "redacted_thinking", "data": redacted_data_for(encrypted)},
                {"type": "thinking", "thinking": "From Anthropic.", "signature": "EqQBCkYIBRgCKkA"},
                {"type": "tool_use", "id": tool_id, "name": "t", "input": {}},
            ),
            user({"type": "tool_result", "tool_use_id": tool_id, "content": "done"}),
        ]
    )["messages"]
    assert sent[1]["reasoning_details"] == [
        {
            "type": "reasoning.text",
            "text": "Let me think.",
            "signature": "sig-1",
            "format": "anthropic-claude-v1",
            "index": 0,
        },
        {**encrypted, "index": 1},
        {
            "type": "reasoning.text",
            "text": "From Anthropic.",
            "signature": "EqQBCkYIBRgCKkA",
            "format": "anthropic-claude-v1",
            "index": 2,
        },
    ]
    assert sent[1]["tool_calls"][0]["id"] == "tool_1"  # pairs with the encrypted detail's id
    assert sent[1]["content"] is None


def test_whitespace_only_assistant_text_is_not_sent():
    sent = body(
        messages=[
            {"role": "user", "content": "x"},
            assistant({"type": "text", "text": "\n\n"}, {"type": "text", "text": "Done."}),
            {"role": "user", "content": "y"},
        ]
    )["messages"]
    assert sent[1] == {"role": "assistant", "content": "Done."}


# -- the rest of the body ----------------------------------------------------------------


def test_sampling_stop_user_and_structured_output():
    schema = {"type": "object", "properties": {"answer": {"type": "string"}}}
    sent = body(
        temperature=0.3,
        top_p=0.9,
        top_k=40,
        stop_sequences=["END", "STOP"],
        metadata={"user_id": "user_abc"},
        stream=True,
        output_config={"format": {"type": "json_schema", "schema": schema}},
    )
    assert (sent["temperature"], sent["top_p"], sent["top_k"]) == (0.3, 0.9, 40)
    assert sent["stop"] == ["END", "STOP"]
    assert sent["user"] == "user_abc"
    assert sent["usage"] == {"include": True}
    assert sent["stream_options"] == {"include_usage": True}
    assert sent["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "response", "strict": True, "schema": schema},
    }


def test_fields_without_an_upstream_form_are_tolerated_and_not_forwarded():
    sent = body(
        service_tier="auto",
        context_management={"edits": []},
        container="c1",
        mcp_servers=[{"type": "url", "url": "https://mcp.example.com", "name": "x"}],
        speed="fast",
        inference_geo="us",
        diagnostics={"x": 1},
        brand_new_field={"a": 1},
    )
    for name in (
        "service_tier",
        "context_management",
        "container",
        "mcp_servers",
        "speed",
        "inference_geo",
        "diagnostics",
        "brand_new_field",
    ):
        assert name not in sent


def test_provider_preferences_come_from_configuration(tmp_path):
    settings = Settings(
        _env_file=None,
        provider={"order": ["anthropic"], "allow_fallbacks": False},
        data_dir=tmp_path,
    )
    assert body(CLAUDE, settings)["provider"] == {"order": ["anthropic"], "allow_fallbacks": False}
    assert "provider" not in body(CLAUDE, Settings(_env_file=None, data_dir=tmp_path))


def test_provider_preferences_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("OAS_PROVIDER", '{"sort": "throughput", "ignore": ["deepinfra"]}')
    monkeypatch.setenv("OAS_CACHE_CONTROL", "never")
    settings = Settings(_env_file=None, data_dir=tmp_path)
    assert settings.provider == {"sort": "throughput", "ignore": ["deepinfra"]}
    assert settings.cache_control == "never"
