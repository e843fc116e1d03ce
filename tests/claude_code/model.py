"""A scripted "model" that plays Claude's part behind `oas` for a real Claude Code session.

It sits at the far end, as the OpenAI-compatible upstream, so it sees each request the
way a real provider would after `oas` converted it. Claude Code sends more than the
main loop: sub-agent warm-ups ("Warmup"), a token-count fallback (`max_tokens: 1`), and
small-model helpers (the prefix of a Bash command, the files a command touched). Those
get short plausible answers.
Requests of the main loop (they carry the scenario's marker in the first user turn and
offer the coding tools) follow the scenario: step N answers the N-th assistant turn.

A step sees the results of the previous turn's tool calls, and must read them to go on
(the next call's arguments come from the last result). So a session only reaches its
final answer if every tool call went to Claude Code and every result came back through
`oas` intact; when something is missing the step records a problem and answers with it,
which the test then reports.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from src.tasks.request_kind import request_kind
from tests.support.upstream import Reply, ToolCall

MARKER_PREFIX = "[oas-scenario:"


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


@dataclass
class ToolOutcome:
    """One tool call of the previous assistant turn and what came back for it."""

    name: str
    arguments: dict[str, Any]
    result: str | None  # None: no tool message answered this call
    call_id: str = ""

    @property
    def failed(self) -> bool:
        # OpenAI tool messages have no is_error flag; oas marks failures in the text.
        return self.result is not None and self.result.startswith("Error")


@dataclass
class Turn:
    """What the model knows when it answers one main-loop request."""

    body: dict[str, Any]
    step: int
    outcomes: list[ToolOutcome]
    model: ScriptedModel

    def require(self, condition: bool, problem: str) -> bool:
        """Record a problem (the test fails on it) unless `condition` holds."""
        if not condition:
            self.model.problems.append(f"step {self.step}: {problem}")
        return condition

    def result_of(self, name: str) -> str:
        """The result text of the one call named `name` in the previous turn ("" if none)."""
        matches = [o for o in self.outcomes if o.name == name]
        if not self.require(len(matches) == 1, f"expected one {name} result, got {self.outcomes}"):
            return ""
        result = matches[0].result
        self.require(result is not None, f"{name} call was never answered")
        return result or ""

    def broken(self) -> Reply:
        """What the model says when the session cannot go on: the test sees it."""
        return Reply(text="SCENARIO BROKEN: " + "; ".join(self.model.problems))


Step = Callable[[Turn], Reply]


def tool(name: str, **arguments: Any) -> ToolCall:
    return ToolCall(name, arguments)


@dataclass
class ScriptedModel:
    """Answers every request of one Claude Code session; see the module docstring."""

    marker: str
    steps: list[Step]
    problems: list[str] = field(default_factory=list)
    main_requests: list[dict[str, Any]] = field(default_factory=list)
    auxiliary: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    intercept: Callable[[dict[str, Any]], Reply | None] | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, body: dict[str, Any]) -> Reply:
        with self._lock:
            if self.intercept is not None and (reply := self.intercept(body)) is not None:
                return reply
            if not self.is_main_loop(body):
                kind, reply = auxiliary_reply(body)
                self.auxiliary.append((kind, body))
                return reply
            self.main_requests.append(body)
            turn = Turn(body, self._step_of(body), self._outcomes(body), self)
            if turn.step >= len(self.steps):
                self.problems.append(f"main loop asked for step {turn.step} of {len(self.steps)}")
                return Reply(text="SCENARIO OVER: no more steps")
            try:
                reply = self.steps[turn.step](turn)
            except Exception as exc:
                self.problems.append(f"step {turn.step} raised {exc!r}")
                return turn.broken()
            if self.problems and not reply.text.startswith("SCENARIO"):
                return turn.broken()
            return reply

    # -- reading the request ---------------------------------------------------------

    def is_main_loop(self, body: dict[str, Any]) -> bool:
        messages = body.get("messages") or []
        first_user = next((m for m in messages if m.get("role") == "user"), None)
        if first_user is None or self.marker not in _text(first_user.get("content")):
            return False
        names = {t.get("function", {}).get("name") for t in body.get("tools") or []}
        return (
            (body.get("max_tokens") or 0) > 1
            and {"Bash", "Write"} <= names
            and request_kind(_as_anthropic(body)) == "main"
        )  # 2.1 compacts with tools on

    @staticmethod
    def _step_of(body: dict[str, Any]) -> int:
        return sum(1 for m in body.get("messages") or [] if m.get("role") == "assistant")

    @staticmethod
    def _outcomes(body: dict[str, Any]) -> list[ToolOutcome]:
        messages = body.get("messages") or []
        last = max(
            (i for i, m in enumerate(messages) if m.get("role") == "assistant"), default=None
        )
        if last is None:
            return []
        results = {
            m.get("tool_call_id"): _text(m.get("content"))
            for m in messages[last + 1 :]
            if m.get("role") == "tool"
        }
        outcomes = []
        for call in messages[last].get("tool_calls") or []:
            function = call.get("function") or {}
            try:
                arguments = orjson.loads(function.get("arguments") or "{}")
            except orjson.JSONDecodeError:
                arguments = {"unparsed": function.get("arguments")}
            outcomes.append(
                ToolOutcome(
                    function.get("name", ""),
                    arguments,
                    results.get(call.get("id")),
                    call.get("id") or "",
                )
            )
        return outcomes


def auxiliary_reply(body: dict[str, Any]) -> tuple[str, Reply]:
    """A plausible answer to one of Claude Code's side requests, and what kind it was."""
    messages = body.get("messages") or []
    system = "\n".join(_text(m.get("content")) for m in messages if m.get("role") == "system")
    users = [m for m in messages if m.get("role") == "user"]
    last_user = _text(users[-1].get("content")) if users else ""
    if (body.get("max_tokens") or 0) <= 1:
        return "token-count", Reply(text="0")  # "count" with max_tokens 1: only usage matters
    if last_user.strip() == "Warmup":
        return "warmup", Reply(text="Ready to help.")
    if "command prefix" in system + last_user and (found := re.search(r"Command: (.+)", last_user)):
        words = found.group(1).split()
        return "bash-prefix", Reply(text=words[0] if words else "none")
    if "Extract any file paths" in system:
        return "file-paths", Reply(
            text="<is_displaying_contents>\nfalse\n</is_displaying_contents>"
            "\n\n<filepaths>\n</filepaths>"
        )
    # The other kinds, told apart as `oas` tags them (Interactive sessions ask for topics
    # and titles; headless ones do not). An unknown kind is answered but flagged by
    # test_what_claude_code_sends.
    kind = request_kind(_as_anthropic(body))
    return (
        ("other", Reply(text="OK."))
        if kind == "main"
        else (kind, Reply(text=_ANSWERS.get(kind, "OK.")))
    )


# What a model would answer to each kind of side request (the shapes Claude Code parses).
_ANSWERS = {
    "topic": '{"isNewTopic": false, "title": null}',
    "title": "Touring the tools",
    "summary": "<summary>\n1. Primary Request: a tour of the tools.\n</summary>",
    "quota": "0",
    "web-fetch": "The page says nothing the prompt asked about.",
    "web-search": "No results.",
    "subagent": "Done.",
}


def _as_anthropic(body: dict[str, Any]) -> dict[str, Any]:
    """Enough of the Anthropic request behind an upstream body for `request_kind`."""
    messages = body.get("messages") or []
    tools = [
        {"type": "web_search_upstream"} if t.get("type") == "openrouter:web_search" else t
        for t in body.get("tools") or []
    ]
    return {
        "max_tokens": body.get("max_tokens") or body.get("max_completion_tokens"),
        "system": "\n".join(_text(m.get("content")) for m in messages if m.get("role") == "system"),
        "messages": [m for m in messages if m.get("role") != "system"],
        "tools": tools,
    }


def marker_for(name: str) -> str:
    return f"{MARKER_PREFIX}{name}]"


__all__ = ["ScriptedModel", "Step", "ToolOutcome", "Turn", "auxiliary_reply", "marker_for", "tool"]
