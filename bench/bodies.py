"""Request bodies the benchmark sends: a small chat turn and one of Claude Code's size.

Claude Code resends 50-500 KB each turn: a long system prompt, 20-40 tools with JSON
schemas, and the conversation so far. `claude_code_request` builds one of that shape from
a fixed seed, so every run measures the same bytes.
"""

from __future__ import annotations

import random
from typing import Any

WORDS = [
    "the",
    "of",
    "and",
    "to",
    "a",
    "in",
    "is",
    "you",
    "that",
    "it",
    "for",
    "on",
    "with",
    "as",
    "are",
    "this",
    "be",
    "at",
    "or",
    "your",
    "file",
    "code",
    "tool",
    "use",
    "can",
    "not",
    "will",
    "when",
    "by",
    "from",
    "if",
    "an",
    "should",
    "have",
    "all",
    "path",
    "command",
    "output",
    "def",
    "return",
    "import",
    "class",
    "self",
    "None",
    "True",
    "False",
    "print",
    "value",
    "result",
    "error",
]


def claude_code_request(
    turns: int, seed: int = 0, model: str = "claude-sonnet-4-5", stream: bool = False
) -> dict[str, Any]:
    """A Claude Code turn: 20 tools, a ~18 KB system prompt, `turns` tool round trips."""
    rnd = random.Random(seed)

    def text(n: int) -> str:
        return " ".join(rnd.choice(WORDS) for _ in range(n))

    tools = [
        {
            "name": f"Tool{i}",
            "description": text(400),
            "input_schema": {
                "type": "object",
                "required": ["param_0"],
                "additionalProperties": False,
                "properties": {
                    f"param_{j}": {"type": "string", "description": text(40)} for j in range(8)
                },
            },
        }
        for i in range(20)
    ]
    messages: list[dict[str, Any]] = [
        {"role": "user", "content": [{"type": "text", "text": text(300)}]}
    ]
    for t in range(turns):
        tid = f"toolu_{t:04d}"
        messages.append(
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": text(30)},
                    {
                        "type": "tool_use",
                        "id": tid,
                        "name": f"Tool{t % 20}",
                        "input": {"param_0": text(10)},
                    },
                ],
            }
        )
        messages.append(
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": tid,
                        "content": text(rnd.randint(100, 400)),
                    }
                ],
            }
        )
    return {
        "model": model,
        "max_tokens": 32000,
        "stream": stream,
        "tools": tools,
        "messages": messages,
        "system": [{"type": "text", "text": text(3000), "cache_control": {"type": "ephemeral"}}],
    }


def small_request(model: str, stream: bool, max_tokens: int = 1024) -> dict[str, Any]:
    """One short user turn: what the per-request overhead is measured with."""
    return {
        "model": model,
        "max_tokens": max_tokens,
        "stream": stream,
        "messages": [{"role": "user", "content": "Write a function that adds two numbers."}],
    }


def openai_request(body: dict[str, Any]) -> dict[str, Any]:
    """The same turn as a chat completion, for the direct-to-upstream floor."""
    messages: list[dict[str, Any]] = []
    system = body.get("system")
    if system:
        text = system if isinstance(system, str) else "\n".join(b["text"] for b in system)
        messages.append({"role": "system", "content": text})
    for message in body["messages"]:
        content = message["content"]
        if not isinstance(content, str):
            content = "\n".join(
                str(b.get("text") or b.get("content") or b.get("input")) for b in content
            )
        messages.append({"role": message["role"], "content": content})
    out: dict[str, Any] = {
        "model": body["model"],
        "messages": messages,
        "max_tokens": body["max_tokens"],
        "stream": body.get("stream", False),
    }
    if body.get("tools"):
        out["tools"] = [
            {
                "type": "function",
                "function": {
                    "name": t["name"],
                    "description": t["description"],
                    "parameters": t["input_schema"],
                },
            }
            for t in body["tools"]
        ]
    if out["stream"]:
        out["stream_options"] = {"include_usage": True}
    return out
