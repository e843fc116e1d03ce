"""Which kind of request this is: a session's main turn, or one of Claude Code's side requests.

Claude Code sends more than its main loop to `ANTHROPIC_BASE_URL`: sub-agent turns, quota
checks, session titles, topic detection, conversation summaries (compaction), the page
summary behind WebFetch, the search request behind WebSearch, sub-agent warm-ups, and on
1.0/2.0 small-model helpers (a Bash command's prefix, the files a command touched). Each
request's flow run is tagged `kind:<kind>` with the name returned here, so the dashboard
can show a session's main turns apart from its side traffic.

The kinds are recognised by the fixed prompts Claude Code sends with them (read from the
releases under test, 1.0 to 2.1); anything else is `main`. A pure function of the
request body: no I/O, no settings.
"""

from __future__ import annotations

from typing import Any

MAIN = "main"
KINDS = (
    "main",
    "subagent",
    "quota",
    "token-count",
    "warmup",
    "title",
    "topic",
    "summary",
    "web-fetch",
    "web-search",
    "bash-prefix",
    "file-paths",
)

# (kind, phrase) looked for in the system prompt, first match wins.
_SYSTEM_PHRASES: tuple[tuple[str, str], ...] = (
    ("topic", "indicates a new conversation topic"),
    ("title", "title for this session"),
    ("title", "title for the conversation"),
    ("title", "Summarize this coding conversation in under 50 characters"),
    ("summary", "create a detailed summary of the conversation"),
    ("bash-prefix", "command prefix detection"),
    ("file-paths", "Extract any file paths that this command"),
    ("web-search", "performing a web search tool use"),
    ("subagent", "You are an agent for Claude Code"),
)
# Phrases of a side request's own user text: the summary prompt ends the conversation it
# summarises; WebFetch's page and WebSearch's query are the one message of theirs.
_SUMMARY = "create a detailed summary of the conversation"
_WEB_FETCH = "Web page content:"
_WEB_SEARCH = "Perform a web search for the query:"


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(
            b.get("text", "")
            for b in content
            if isinstance(b, dict) and isinstance(b.get("text"), str)
        )
    return ""


def _last_user_text(messages: list[Any]) -> str:
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            return _text(message.get("content"))
    return ""


def _has_web_search_tool(body: dict[str, Any]) -> bool:
    tools = body.get("tools")
    return isinstance(tools, list) and any(
        isinstance(t, dict) and str(t.get("type") or "").startswith("web_search_") for t in tools
    )


def request_kind(body: Any) -> str:
    """The kind of one `/v1/messages` request body (one of `KINDS`); `main` when unsure."""
    if not isinstance(body, dict):
        return MAIN
    found = body.get("messages")
    messages: list[Any] = found if isinstance(found, list) else []
    last_user = _last_user_text(messages).strip()
    if body.get("max_tokens") == 1:
        if len(messages) == 1 and last_user == "quota":
            return "quota"
        return "token-count"
    if last_user == "Warmup":
        return "warmup"
    system = _text(body.get("system"))
    for kind, phrase in _SYSTEM_PHRASES:
        if phrase in system:
            return "web-search" if _has_web_search_tool(body) else kind
    if _SUMMARY in last_user:
        return "summary"
    if len(messages) == 1 and last_user.startswith(_WEB_FETCH):
        return "web-fetch"
    if _has_web_search_tool(body) and len(messages) == 1 and last_user.startswith(_WEB_SEARCH):
        return "web-search"
    return MAIN
