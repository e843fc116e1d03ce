"""Claude Code's side requests are told apart from a session's main turns.

The bodies are cut down from what the releases under test send (1.0.128, 2.0.77, 2.1.33x):
the fixed prompts are theirs, verbatim in the part the classifier reads.
"""

from __future__ import annotations

import pytest

from src.tasks.request_kind import KINDS, request_kind

MAIN_SYSTEM = [
    {"type": "text", "text": "You are Claude Code, Anthropic's official CLI for Claude."},
    {"type": "text", "text": "You are an interactive CLI tool that helps users."},
]
TOOLS = [
    {"name": "Bash", "input_schema": {"type": "object"}},
    {"name": "Write", "input_schema": {"type": "object"}},
]


def body(messages, system=None, max_tokens=32000, tools=None):
    out = {"model": "claude-sonnet-4-5", "max_tokens": max_tokens, "messages": messages}
    if system is not None:
        out["system"] = system
    if tools is not None:
        out["tools"] = tools
    return out


def user(text):
    return {"role": "user", "content": [{"type": "text", "text": text}]}


CASES = {
    "main": body([user("fix the failing test")], MAIN_SYSTEM, tools=TOOLS),
    "main with history": body(
        [
            user("fix the failing test"),
            {
                "role": "assistant",
                "content": [
                    {"type": "tool_use", "id": "t1", "name": "Read", "input": {"file_path": "/x"}}
                ],
            },
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": "t1",
                        "content": "Web page content: quota Warmup",
                    }
                ],
            },
        ],
        MAIN_SYSTEM,
        tools=TOOLS,
    ),
    "quota": body([{"role": "user", "content": "quota"}], max_tokens=1),
    "token-count": body([user("how many tokens is this")], max_tokens=1),
    "warmup": body(
        [user("Warmup")],
        [{"type": "text", "text": "You are an agent for Claude Code, Anthropic's official CLI"}],
    ),
    "subagent": body(
        [user("Find where the config is read")],
        [
            {
                "type": "text",
                "text": "You are an agent for Claude Code, Anthropic's "
                "official CLI for Claude. Given the user's",
            }
        ],
        tools=TOOLS,
    ),
    "topic": body(
        [user("now let's write docs")],
        "Analyze if this message indicates a new "
        "conversation topic. If it does, extract a 2-3 word title",
    ),
    "title 1.0": body(
        [user("Please generate a title for this session.")],
        "Summarize this coding conversation in under 50 characters.",
    ),
    "title 2.0": body(
        [user("conversation...")],
        [
            {
                "type": "text",
                "text": "Please generate a "
                "title and branch name for this session. "
                "Respond with the title for the conversation "
                "and nothing else.",
            }
        ],
    ),
    "summary": body(
        [
            user("fix it"),
            {"role": "assistant", "content": "done"},
            user(
                "Your task is to create a detailed summary of the conversation so far, "
                "paying close attention to the user's explicit requests"
            ),
        ],
        MAIN_SYSTEM,
    ),
    "web-fetch": body(
        [
            user(
                "Web page content:\n---\n<p>hi</p>\n---\n\nWhat does it say?\n\n"
                "Provide a concise response based only on the content above."
            )
        ]
    ),
    "web-search": body(
        [user("Perform a web search for the query: prefect 3 release")],
        [{"type": "text", "text": "You are an assistant for performing a web search tool use"}],
        tools=[{"type": "web_search_20250305", "name": "web_search"}],
    ),
    "bash-prefix": body(
        [user("Command: git status")],
        "Your task is to process Bash commands "
        "... # Claude Code Code Bash command prefix detection",
    ),
    "file-paths": body(
        [user("Command: cat a.txt\nOutput: hi")],
        "Extract any file paths that this command reads or modifies.",
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_each_kind_of_request_is_recognised(name):
    expected = name.split(" ")[0]
    assert expected in KINDS
    assert request_kind(CASES[name]) == expected


def test_every_kind_has_a_case():
    assert {name.split(" ")[0] for name in CASES} == set(KINDS)


@pytest.mark.parametrize(
    "odd",
    [
        None,
        "text",
        [],
        {},
        {"messages": "x"},
        {"messages": [None, 3]},
        {"system": 5, "messages": [{"role": "user", "content": 7}]},
    ],
)
def test_anything_odd_is_a_main_turn_not_an_error(odd):
    assert request_kind(odd) == "main"
