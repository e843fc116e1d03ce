"""Conversion details that exist for Claude Code's sake (fast unit tests, no CLI)."""

from __future__ import annotations

from src.schemas.anthropic import MessagesRequest
from src.tasks.conversion.request import convert_messages


def test_a_tool_search_result_tells_the_model_which_tools_were_loaded():
    # What Claude Code 2.1 sends back after its ToolSearch tool loaded a deferred tool.
    request = MessagesRequest.model_validate(
        {
            "model": "claude-opus-5-5",
            "max_tokens": 100,
            "messages": [
                {"role": "user", "content": "Edit the notebook"},
                {
                    "role": "assistant",
                    "content": [
                        {
                            "type": "tool_use",
                            "id": "toolu_1",
                            "name": "ToolSearch",
                            "input": {"query": "select:NotebookEdit"},
                        }
                    ],
                },
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "tool_result",
                            "tool_use_id": "toolu_1",
                            "content": [{"type": "tool_reference", "tool_name": "NotebookEdit"}],
                        },
                        {"type": "text", "text": "Tool loaded."},
                    ],
                },
            ],
        }
    )
    messages = convert_messages(request)
    assert messages[-2] == {
        "role": "tool",
        "tool_call_id": "toolu_1",
        "content": "Tool loaded: NotebookEdit",
    }
    assert messages[-1] == {"role": "user", "content": "Tool loaded."}
