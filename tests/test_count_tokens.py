"""POST /v1/messages/count_tokens: the count the upstream would bill, for the mapped model."""

from __future__ import annotations

import base64
import struct
import zlib
from typing import Any

import anthropic
import httpx
import pytest

from src.core.errors import AnthropicError
from src.core.settings import Settings
from src.services import tokenizer
from src.tasks import tokens
from src.tasks.conversion.request import to_openai
from src.tasks.routing import map_model
from src.tasks.validation import parse_messages_request
from tests.support.upstream import Reply, litellm_prompt_tokens


def png(width: int, height: int) -> str:
    """A real (grey) PNG of the given size, base64, so image token counts use its size."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    rows = b"".join(b"\x00" + b"\x80" * width for _ in range(height))
    raw = (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )
    return base64.b64encode(raw).decode()


TOOLS = [
    {
        "name": "Read",
        "description": "Read a file from the local filesystem.",
        "input_schema": {
            "type": "object",
            "properties": {
                "file_path": {"type": "string", "description": "Absolute path of the file"},
                "limit": {"type": "integer", "description": "How many lines to read"},
            },
            "required": ["file_path"],
        },
    },
    {
        "name": "Bash",
        "description": "Run a shell command and return its output.",
        "input_schema": {
            "type": "object",
            "properties": {"command": {"type": "string"}},
            "required": ["command"],
        },
    },
]
SYSTEM = [
    {
        "type": "text",
        "text": "You are Claude Code, a coding assistant. Be terse.",
        "cache_control": {"type": "ephemeral"},
    }
]


def tool_loop_request(model: str = "claude-sonnet-4-5") -> dict[str, Any]:
    """System, tools, an image, a tool call and its result: what Claude Code sends."""
    return {
        "model": model,
        "system": SYSTEM,
        "tools": TOOLS,
        "tool_choice": {"type": "auto"},
        "messages": [
            {
                "role": "user",
                "content": [
                    {
                        "type": "text",
                        "text": "What does this screenshot show, and what is in main.py?",
                    },
                    {
                        "type": "image",
                        "source": {
                            "type": "base64",
                            "media_type": "image/png",
                            "data": png(300, 200),
                        },
                    },
                ],
            },
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": "Let me read the file."},
                    {
                        "type": "tool_use",
                        "id": "toolu_01",
                        "name": "Read",
                        "input": {"file_path": "/src/main.py"},
                    },
                ],
            },
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": "toolu_01",
                        "content": "def main():\n    print('hello, world')\n" * 20,
                    }
                ],
            },
        ],
    }


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(_env_file=None, data_dir=tmp_path, tracking=False)  # type: ignore[call-arg]


def whole_count(body: dict[str, Any], settings: Settings) -> int:
    """LiteLLM's count of the whole upstream body at once, as the scripted upstream counts."""
    request = parse_messages_request({**body, "max_tokens": 1})
    return litellm_prompt_tokens(to_openai(request, map_model(request.model, settings)))


# ---- the counting itself ---------------------------------------------------------------


@pytest.mark.parametrize(
    "model",
    [
        "claude-sonnet-4-5",
        "claude-haiku-4-5",
        "openai/gpt-4o",
        "deepseek/deepseek-chat-v3",
        "meta-llama/llama-3.1-8b-instruct",
    ],
)
def test_part_by_part_count_equals_litellms_count_of_the_whole_body(model, settings):
    tokenizer.cache.clear()
    body = tool_loop_request(model)
    counted = tokens.count_request_tokens(body, settings)
    assert counted.input_tokens == whole_count(body, settings)
    assert counted.input_tokens > 300
    assert counted.upstream_model == map_model(model, settings).upstream_model


def test_a_repeated_request_is_counted_from_the_cache_and_a_new_turn_only_adds(settings):
    tokenizer.cache.clear()
    body = tool_loop_request()
    first = tokens.count_request_tokens(body, settings)
    again = tokens.count_request_tokens(body, settings)
    assert first.reused == 0 and again.reused == again.parts
    assert again.input_tokens == first.input_tokens

    next_turn = {
        **body,
        "messages": [
            *body["messages"],
            {"role": "assistant", "content": "It prints hello."},
            {"role": "user", "content": "Now make it print goodbye."},
        ],
    }
    counted = tokens.count_request_tokens(next_turn, settings)
    assert counted.reused == first.parts  # every earlier part, only the two new turns counted
    assert counted.input_tokens == whole_count(next_turn, settings) > first.input_tokens

    edited = {**body, "messages": [*body["messages"][:-1], {"role": "user", "content": "short"}]}
    assert tokens.count_request_tokens(edited, settings).input_tokens == whole_count(
        edited, settings
    )


def test_the_count_is_a_real_tokenization_of_the_text(settings):
    import tiktoken

    tokenizer.litellm_module()  # points tiktoken at the encodings LiteLLM ships
    text = "The quick brown fox jumps over the lazy dog. " * 200
    expected = len(tiktoken.get_encoding("o200k_base").encode(text))
    counted = tokens.count_request_tokens(
        {"model": "openai/gpt-4o", "messages": [{"role": "user", "content": text}]}, settings
    )
    # plus the message framing (6), and LiteLLM encodes in 1 KB chunks: <= 1 token each
    assert expected <= counted.input_tokens <= expected + 6 + len(text) // 1024 + 1


def test_tools_system_and_images_each_add_tokens(settings):
    full = tool_loop_request()
    without_tools = {k: v for k, v in full.items() if k not in ("tools", "tool_choice")}
    without_system = {k: v for k, v in full.items() if k != "system"}
    first = full["messages"][0]
    without_image = {
        **full,
        "messages": [{"role": "user", "content": [first["content"][0]]}, *full["messages"][1:]],
    }
    bigger_image = {
        **full,
        "messages": [
            {
                "role": "user",
                "content": [
                    first["content"][0],
                    {
                        "type": "image",
                        "source": {
                            "type": "base64",
                            "media_type": "image/png",
                            "data": png(1200, 900),
                        },
                    },
                ],
            },
            *full["messages"][1:],
        ],
    }

    def count(body: dict[str, Any]) -> int:
        return tokens.count_request_tokens(body, settings).input_tokens

    total = count(full)
    assert total - count(without_tools) > 50
    assert total - count(without_system) > 5
    assert total - count(without_image) > 50
    assert count(bigger_image) > total


@pytest.mark.parametrize(
    "body, message",
    [
        ([], "must be a JSON object"),
        ({"model": "claude-sonnet-4-5"}, "messages: Field required"),
        ({"messages": [{"role": "user", "content": "hi"}]}, "model: Field required"),
        ({"model": "claude-sonnet-4-5", "messages": []}, "at least one message"),
        ({"model": "claude-sonnet-4-5", "messages": [{"role": "robot", "content": "hi"}]}, "role"),
        (
            {
                "model": "claude-sonnet-4-5",
                "messages": [{"role": "user", "content": [{"type": "text"}]}],
            },
            "messages.0.content",
        ),
        (
            {
                "model": "claude-sonnet-4-5",
                "messages": [{"role": "user", "content": "hi"}],
                "tools": [{"description": "no name"}],
            },
            "tools.0: Value error, a client tool needs a `name`",
        ),
    ],
)
def test_malformed_requests_are_400_not_a_count(body, message, settings):
    with pytest.raises(AnthropicError) as caught:
        tokens.count_request_tokens(body, settings)
    assert caught.value.status == 400 and caught.value.error_type == "invalid_request_error"
    assert message in caught.value.message


# ---- through the API -------------------------------------------------------------------


def test_the_sdk_count_equals_the_usage_the_upstream_reports_for_the_same_request(oas, upstream):
    upstream.prompt_tokens = litellm_prompt_tokens
    body = tool_loop_request()
    client = oas.client()
    counted = client.messages.count_tokens(**body)
    upstream.queue(Reply(text="It prints hello, world."))
    message = client.messages.create(max_tokens=100, **body)
    assert counted.input_tokens == message.usage.input_tokens > 300

    upstream.queue(Reply(text="Streamed.", chunk_size=3))
    with client.messages.stream(max_tokens=100, **body) as stream:
        final = stream.get_final_message()
    assert final.usage.input_tokens == counted.input_tokens


def test_beta_count_tokens_with_thinking_and_documents_is_accepted(oas):
    client = oas.client()
    counted = client.beta.messages.count_tokens(
        model="claude-opus-4-1",
        thinking={"type": "enabled", "budget_tokens": 2000},
        messages=[
            {
                "role": "user",
                "content": [
                    {
                        "type": "document",
                        "source": {
                            "type": "text",
                            "media_type": "text/plain",
                            "data": "The launch code is 1234.",
                        },
                    },
                    {"type": "text", "text": "What is the launch code?"},
                ],
            },
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "The document says 1234.", "signature": "sig"},
                    {"type": "text", "text": "1234"},
                ],
            },
            {"role": "user", "content": "Thanks"},
        ],
        betas=["token-counting-2024-11-01"],
    )
    assert counted.input_tokens > 10


def test_count_tokens_calls_no_model(oas, upstream):
    oas.client().messages.count_tokens(model="big", messages=[{"role": "user", "content": "hi"}])
    assert upstream.requests == []


def test_malformed_input_gets_the_same_400_as_messages(oas, upstream):
    bodies: list[Any] = [
        {"model": "claude-sonnet-4-5", "messages": []},
        {
            "model": "claude-sonnet-4-5",
            "messages": [{"role": "user", "content": [{"type": "text"}]}],
        },
        {"model": "", "messages": [{"role": "user", "content": "hi"}]},
        ["not", "an", "object"],
    ]
    with httpx.Client(base_url=oas.url) as http:
        for body in bodies:
            counted = http.post("/v1/messages/count_tokens?beta=true", json=body)
            created = http.post(
                "/v1/messages", json={**body, "max_tokens": 10} if isinstance(body, dict) else body
            )
            assert counted.status_code == created.status_code == 400
            assert counted.json()["error"] == created.json()["error"]
            assert counted.json()["error"]["type"] == "invalid_request_error"
            assert "input_tokens" not in counted.json()
        for raw in (b"", b"{not json"):
            response = http.post(
                "/v1/messages/count_tokens",
                content=raw,
                headers={"content-type": "application/json"},
            )
            assert response.status_code == 400
            assert response.json()["error"]["type"] == "invalid_request_error"
    assert upstream.requests == []


def test_the_sdk_raises_its_bad_request_error(oas):
    with pytest.raises(anthropic.BadRequestError) as caught:
        oas.client().messages.count_tokens(model="claude-sonnet-4-5", messages=[])
    assert caught.value.status_code == 400


# ---- in Prefect --------------------------------------------------------------------------


@pytest.mark.e2e
def test_a_count_is_a_count_tokens_flow_run_with_one_task(tracked_oas, prefect_api):
    from tests.support.prefect_api import PrefectReader

    reader = PrefectReader(prefect_api)
    raw = tracked_oas.client().messages.with_raw_response.count_tokens(
        model="claude-haiku-4-5",
        messages=[{"role": "user", "content": "count me"}],
        extra_headers={"X-Claude-Code-Session-Id": "session-count"},
    )
    counted = raw.parse().input_tokens
    run = reader.flow_run_for_request(raw.headers["request-id"], state="COMPLETED")
    assert run["name"].startswith("claude-haiku-4-5 · count · ")
    assert {
        "model:claude-haiku-4-5",
        "count",
        "session:session-count",
        f"upstream:{tracked_oas.settings.small_model}",
    } <= set(run["tags"])
    tasks = reader.task_runs(run["id"], expected=1)
    assert [(t["name"], t["state_type"]) for t in tasks] == [("count-tokens", "COMPLETED")]
    artifact = reader.artifacts(run["id"])[0]["data"]
    assert f"| input tokens | {counted} |" in artifact

    with pytest.raises(anthropic.BadRequestError) as caught:
        tracked_oas.client().messages.count_tokens(model="claude-haiku-4-5", messages=[])
    failed = reader.flow_run_for_request(
        caught.value.response.headers["request-id"], state="FAILED"
    )
    assert "error:invalid_request_error" in failed["tags"]
    assert reader.task_runs(failed["id"], expected=1)[0]["state_type"] == "FAILED"
