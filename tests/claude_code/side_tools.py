"""The tools that make Claude Code send requests of its own: Task/Agent, WebSearch, WebFetch.

One session calls the three in one turn (parallel calls). Each makes Claude Code send a
side request through `oas`, which the scripted model answers here:

- Task (Agent in 2.1): the sub-agent's turns carry the prompt the model gave it (with a
  marker of its own); it answers with a token the main loop must then see in the result.
- WebSearch: Claude Code asks its model with Anthropic's `web_search` server tool; `oas`
  turns that into OpenRouter's web search, the scripted upstream answers with
  `url_citation` annotations, and `oas` sends back `web_search_tool_result` blocks, which
  Claude Code lists as the search's links.
- WebFetch: Claude Code fetches the page itself (from a loopback site), then asks its
  small model to answer the prompt over the page's text; that answer is the tool result.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.claude_code.model import ScriptedModel, Turn, _text, marker_for
from tests.claude_code.scenarios import Scenario
from tests.support.upstream import Reply, ToolCall


@dataclass
class SideRequests:
    """The side requests the upstream saw, by kind: the bodies as `oas` sent them upstream."""

    subagent: list[dict[str, Any]] = field(default_factory=list)
    web_search: list[dict[str, Any]] = field(default_factory=list)
    web_fetch: list[dict[str, Any]] = field(default_factory=list)
    results: dict[str, str] = field(default_factory=dict)  # tool -> status


def _first_user(body: dict[str, Any]) -> str:
    return next(
        (_text(m.get("content")) for m in body.get("messages") or [] if m.get("role") == "user"), ""
    )


def side_tools(
    work: Path,
    *,
    task_tool: str,
    deferred: bool,
    page_url: str,
    page_word: str,
) -> tuple[Scenario, SideRequests]:
    tok = secrets.token_hex(4)
    sub_marker = f"[oas-subagent:{tok}]"
    search_url = f"https://docs.example.org/search-{tok}"
    seen = SideRequests()

    def intercept(body: dict[str, Any]) -> Reply | None:
        first = _first_user(body)
        if sub_marker in first:
            seen.subagent.append(body)
            return Reply(text=f"The sub-agent found sub-{tok}.")
        if any(t.get("type") == "openrouter:web_search" for t in body.get("tools") or []) or any(
            p.get("id") == "web" for p in body.get("plugins") or []
        ):
            seen.web_search.append(body)
            text = f"The docs are at docs.example.org (search-{tok})."
            return Reply(
                text=text,
                annotations=[
                    {
                        "type": "url_citation",
                        "url_citation": {
                            "url": search_url,
                            "title": f"Search result {tok}",
                            "content": f"Documentation page {tok}",
                            "start_index": 0,
                            "end_index": len(text),
                        },
                    }
                ],
            )
        if "Web page content:" in first:
            seen.web_fetch.append(body)
            found = page_word in first
            return Reply(text=f"The page's word is {page_word if found else 'MISSING'}.")
        return None

    calls = [
        ToolCall(
            task_tool,
            {
                "description": "Find the token",
                "prompt": f"Report the token. {sub_marker}",
                "subagent_type": "general-purpose",
                **({"run_in_background": False} if deferred else {}),
            },
            id="call_task",
        ),
        ToolCall("WebSearch", {"query": f"oas documentation {tok}"}, id="call_search"),
        ToolCall(
            "WebFetch", {"url": page_url, "prompt": "What is the page's word?"}, id="call_fetch"
        ),
    ]

    def load(turn: Turn) -> Reply:
        return Reply(tool_calls=[ToolCall("ToolSearch", {"query": "select:WebSearch,WebFetch"})])

    def call(turn: Turn) -> Reply:
        if deferred:
            loaded = turn.result_of("ToolSearch")
            turn.require("WebFetch" in loaded, f"ToolSearch did not load WebFetch: {loaded!r}")
        return Reply(text="Three things at once.", tool_calls=calls)

    def answer(turn: Turn) -> Reply:
        results = {o.call_id: o for o in turn.outcomes}
        checks = {
            "call_task": (task_tool, rf"sub-{tok}"),
            "call_search": ("WebSearch", re.escape(search_url)),
            "call_fetch": ("WebFetch", rf"page's word is {re.escape(page_word)}"),
        }
        for call_id, (name, pattern) in checks.items():
            outcome = results.get(call_id)
            text = outcome.result if outcome else None
            if turn.require(
                bool(text and re.search(pattern, text)) and not outcome.failed,
                f"{name}: {text!r} !~ {pattern!r}",
            ):
                seen.results[name] = "pass"
        if turn.model.problems:
            return turn.broken()
        return Reply(text=f"Sub-agent, search and fetch all answered {tok}.")

    model = ScriptedModel(
        marker_for("side-tools"), [load, call, answer] if deferred else [call, answer]
    )
    model.intercept = intercept
    scenario = Scenario(
        "side-tools",
        f"Delegate, search and fetch. {marker_for('side-tools')}",
        model,
        answer=f"all answered {tok}.",
    )
    return scenario, seen
