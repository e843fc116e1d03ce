"""validate-request: what the API accepts is accepted, what it refuses is a clear 400."""

from __future__ import annotations

import base64

import pytest

from src.core.errors import AnthropicError
from src.tasks.validation import parse_messages_request

PNG = base64.b64encode(b"png").decode()


def everything() -> dict:
    """A request with every kind of field and block Claude Code and the SDK (2.13) send."""
    return {
        "model": "claude-opus-4-5",
        "max_tokens": 4096,
        "stream": True,
        "system": [
            {
                "type": "text",
                "text": "You are Claude Code.",
                "cache_control": {"type": "ephemeral", "ttl": "1h"},
            }
        ],
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "<system-reminder>x</system-reminder>"},
                    {
                        "type": "image",
                        "source": {"type": "base64", "media_type": "image/png", "data": PNG},
                    },
                    {
                        "type": "document",
                        "source": {"type": "url", "url": "https://e.com/a.pdf"},
                        "citations": {"enabled": True},
                        "title": "A",
                        "context": "c",
                    },
                    {
                        "type": "search_result",
                        "source": "s",
                        "title": "t",
                        "content": [{"type": "text", "text": "r"}],
                        "citations": {"enabled": True},
                    },
                    {"type": "container_upload", "file_id": "f"},
                ],
            },
            {
                "role": "system",
                "content": [{"type": "text", "text": "mid-conversation instruction"}],
            },
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "hm", "signature": "sig"},
                    {"type": "redacted_thinking", "data": "abc"},
                    {"type": "text", "text": "Let me look.", "citations": []},
                    {
                        "type": "tool_use",
                        "id": "toolu_1",
                        "name": "Read",
                        "input": {"file_path": "/a"},
                        "caller": {"type": "direct"},
                    },
                    {
                        "type": "server_tool_use",
                        "id": "srvtoolu_1",
                        "name": "web_search",
                        "input": {"query": "q"},
                    },
                    {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_1", "content": []},
                ],
            },
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": "toolu_1",
                        "is_error": False,
                        "content": [
                            {"type": "text", "text": "file"},
                            {"type": "tool_reference", "tool_name": "Grep"},
                        ],
                        "cache_control": {"type": "ephemeral"},
                    },
                ],
            },
        ],
        "tools": [
            {
                "name": "Read",
                "description": "Read",
                "input_schema": {"type": "object", "properties": {}},
                "cache_control": {"type": "ephemeral"},
                "strict": True,
                "defer_loading": False,
                "input_examples": [{"file_path": "/x"}],
                "eager_input_streaming": True,
                "allowed_callers": ["direct"],
            },
            {
                "type": "custom",
                "name": "Grep",
                "input_schema": {"type": "object"},
                "defer_loading": True,
            },
            {
                "type": "web_search_20250305",
                "name": "web_search",
                "max_uses": 5,
                "allowed_domains": ["e.com"],
            },
            {"type": "web_fetch_20250910", "name": "web_fetch"},
            {"type": "code_execution_20250825", "name": "code_execution"},
            {"type": "tool_search_tool_regex_20251119", "name": "tool_search_tool_regex"},
            {"type": "mcp_toolset", "mcp_server_name": "docs"},
        ],
        "tool_choice": {"type": "auto", "disable_parallel_tool_use": True},
        "thinking": {"type": "adaptive", "display": "summarized"},
        "output_config": {
            "effort": "high",
            "format": {"type": "json_schema", "schema": {"type": "object"}},
        },
        "metadata": {"user_id": "user_x_account_y_session_z"},
        "stop_sequences": ["\n\nHuman:"],
        "temperature": 1,
        "top_p": 0.95,
        "top_k": 5,
        "cache_control": {"type": "ephemeral"},
        "service_tier": "auto",
        "speed": "fast",
        "inference_geo": "us",
        "diagnostics": {"cache_miss_reason": True},
        "context_management": {"edits": [{"type": "clear_tool_uses_20250919"}]},
        "container": "container_1",
        "mcp_servers": [{"type": "url", "url": "https://m.e.com", "name": "m"}],
        "user_profile_id": "p",
        "workspace_id": "w",
        "a_field_from_next_month": {"x": 1},
    }


def test_everything_claude_code_and_the_sdk_send_is_accepted():
    request = parse_messages_request(everything())
    assert request.thinking.type == "adaptive"
    assert request.output_config.effort == "high"
    assert request.model_extra["a_field_from_next_month"] == {"x": 1}


@pytest.mark.parametrize(
    "thinking",
    [
        {"type": "enabled", "budget_tokens": 1024},
        {"type": "disabled"},
        {"type": "adaptive"},
        {"type": "between_tools"},
    ],
)
def test_every_thinking_kind_is_accepted(thinking):
    parse_messages_request(
        {
            "model": "m",
            "max_tokens": 5,
            "messages": [{"role": "user", "content": "x"}],
            "thinking": thinking,
        }
    )


@pytest.mark.parametrize(
    "patch, message",
    [
        ({"max_tokens": None}, "max_tokens: Field required"),
        ({"max_tokens": 0}, "max_tokens: Input should be greater than or equal to 1"),
        ({"messages": []}, "messages: at least one message is required"),
        (
            {"messages": [{"role": "robot", "content": "x"}]},
            "messages.0.role: Input should be 'user', 'assistant' or 'system'",
        ),
        (
            {"messages": [{"role": "user", "content": [{"type": "text"}]}]},
            "messages.0.content.0.text: Field required",
        ),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {
                                "type": "tool_result",
                                "tool_use_id": "t",
                                "content": [{"type": "text"}],
                            }
                        ],
                    }
                ]
            },
            "messages.0.content.0.content.0.text: Field required",
        ),
        (
            {
                "messages": [
                    {"role": "user", "content": [{"type": "image", "source": {"type": "base64"}}]}
                ]
            },
            "messages.0.content.0.source: Value error, a `base64` image source needs `data`",
        ),
        (
            {"thinking": {"type": "enabled", "budget_tokens": -1}},
            "thinking.budget_tokens: Input should be greater",
        ),
        (
            {"tools": [{"input_schema": {"type": "object"}}]},
            "tools.0: Value error, a client tool needs a `name`",
        ),
        (
            {"tool_choice": {"type": "tool"}},
            "tool_choice: Value error, `tool_choice` of type `tool` needs a `name`",
        ),
        ({"system": [{"type": "image"}]}, "system.0.type: Input should be 'text'"),
        # a block type that is not a string (found by the schema fuzzer: it was a 500)
        (
            {"messages": [{"role": "user", "content": [{"type": []}]}]},
            "messages.0.content.0.type: Input should be a valid string",
        ),
        # Anthropic takes only a JSON boolean: "yes" is not a request to stream.
        ({"stream": "yes"}, "stream: Input should be a valid boolean"),
        ({"stream": 1}, "stream: Input should be a valid boolean"),
        ({"stream": "true"}, "stream: Input should be a valid boolean"),
        (
            {"tool_choice": {"type": "auto", "disable_parallel_tool_use": "no"}},
            "tool_choice.disable_parallel_tool_use: Input should be a valid boolean",
        ),
    ],
)
def test_bad_requests_are_a_400_naming_the_field(patch, message):
    body = {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}
    body.update({k: v for k, v in patch.items() if v is not None})
    for key in [k for k, v in patch.items() if v is None]:
        body.pop(key)
    with pytest.raises(AnthropicError) as caught:
        parse_messages_request(body)
    assert caught.value.status == 400
    assert caught.value.error_type == "invalid_request_error"
    assert caught.value.message.startswith(message)
