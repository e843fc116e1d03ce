"""Web search (`web_search_*` tools): searched by OpenRouter, shown as Anthropic's blocks.

`oas` does not search itself. On the request side the Anthropic tool becomes OpenRouter's
`openrouter:web_search` server tool (the model decides when and how often to search, as
with Anthropic's; `max_uses`, the domain lists and `user_location` carry over) or, with
`OAS_WEB_SEARCH=plugin`, the older `web` plugin (one search before the model answers).
OpenRouter answers with `url_citation` annotations on the assistant message (in a stream,
on the deltas), and `usage.server_tool_use.web_search_requests`.

On the way back those become what Anthropic's API sends: a `server_tool_use` block (name
`web_search`, input `{query}`), a `web_search_tool_result` block listing the results
(`web_search_result` items), text blocks carrying `web_search_result_location` citations,
and `usage.server_tool_use.web_search_requests`. OpenRouter does not report the query it
ran, so the block shows the user's question (Claude Code's WebSearch tool asks
"Perform a web search for the query: ..." and the query is taken from that).

`encrypted_content` and `encrypted_index` are opaque to clients; here they carry the
result (url, title, snippet) as base64 JSON so that, when a client sends the blocks back
in a later turn, `decode_opaque` gives the model the text it saw (see `history.py`).

Everything here is a pure function or a small accumulator; the converters call them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson
import structlog

from src.core.settings import Settings
from src.schemas.anthropic import MessagesRequest, TextBlock, Tool
from src.tasks.conversion.sse import sse
from src.tasks.server_tools.base import note_use
from src.tasks.server_tools.search_blocks import (
    Hit,
    annotations_in,
    citation,
    cited_text_blocks,
    result_block,
    use_block,
)
from src.tracking import step

WEB_SEARCH_PREFIX = "web_search_"
CLAUDE_CODE_PREFIX = "Perform a web search for the query: "

log = structlog.get_logger("oas.server_tools")


# -- request side ----------------------------------------------------------------------


def find_web_search(request: MessagesRequest) -> Tool | None:
    """The request's `web_search_*` tool definition, if it has one."""
    for tool in request.tools or ():
        if tool.type and tool.type.startswith(WEB_SEARCH_PREFIX):
            return tool
    return None


def _strings(value: Any) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else []


def search_options(definition: Tool, settings: Settings) -> dict[str, Any]:
    """The Anthropic tool's options in OpenRouter's words (shared by tool and plugin)."""
    extra = definition.model_extra or {}
    options: dict[str, Any] = {}
    if settings.web_search_engine:
        options["engine"] = settings.web_search_engine
    if settings.web_search_max_results:
        options["max_results"] = settings.web_search_max_results
    if isinstance(extra.get("max_uses"), int):
        options["max_uses"] = extra["max_uses"]
    if allowed := _strings(extra.get("allowed_domains")):
        options["allowed_domains"] = allowed
    if blocked := _strings(extra.get("blocked_domains")):
        options["excluded_domains"] = blocked
    location = extra.get("user_location")
    if isinstance(location, dict):
        options["user_location"] = {
            k: v
            for k, v in location.items()
            if k in ("type", "city", "region", "country", "timezone") and v is not None
        }
    return options


def upstream_web_search(definition: Tool, settings: Settings) -> dict[str, Any]:
    """What to merge into the upstream body: `{"tools": [server tool]}` or
    `{"plugins": [web plugin]}`; empty when web search is off."""
    options = search_options(definition, settings)
    if settings.web_search == "off":
        return {}
    if settings.web_search == "plugin":
        plugin: dict[str, Any] = {"id": "web"}
        renames = {"allowed_domains": "include_domains", "excluded_domains": "exclude_domains"}
        for key, value in options.items():
            plugin[renames.get(key, key)] = value
        return {"plugins": [plugin]}
    tool: dict[str, Any] = {"type": "openrouter:web_search"}
    if options:
        tool["parameters"] = options
    return {"tools": [tool]}


def apply_web_search(body: dict[str, Any], request: MessagesRequest, settings: Settings) -> bool:
    """Add the request's web search to an upstream body in place; True if search is on.

    A `tool_choice` naming the web search tool is dropped: upstream has no function by
    that name, and OpenRouter's server tool is chosen by the model.
    """
    definition = find_web_search(request)
    if definition is None:
        return False
    extra = upstream_web_search(definition, settings)
    if not extra:
        return False
    if "tools" in extra:
        body["tools"] = [*body.get("tools", []), *extra["tools"]]
    if "plugins" in extra:
        body["plugins"] = [*body.get("plugins", []), *extra["plugins"]]
    choice = body.get("tool_choice")
    if isinstance(choice, dict) and (choice.get("function") or {}).get("name") == definition.name:
        body.pop("tool_choice", None)
        if not any(t.get("type") == "function" for t in body.get("tools", [])):
            body.pop("parallel_tool_calls", None)
    return True


def search_query(request: MessagesRequest) -> str:
    """The query to show in the `server_tool_use` block: the last user text, without
    Claude Code's WebSearch prefix."""
    for message in reversed(request.messages):
        if message.role != "user":
            continue
        if isinstance(message.content, str):
            text = message.content
        else:
            text = "\n".join(b.text for b in message.content if isinstance(b, TextBlock))
        text = text.strip()
        if text:
            return text.removeprefix(CLAUDE_CODE_PREFIX).strip()[:500]
    return ""


# -- response side ---------------------------------------------------------------------


def search_requests(raw_usage: dict[str, Any] | None, searches_seen: int) -> int:
    """`usage.server_tool_use.web_search_requests`: OpenRouter's count when it gives one."""
    reported = ((raw_usage or {}).get("server_tool_use") or {}).get("web_search_requests")
    if isinstance(reported, int) and reported >= 0:
        return reported
    return searches_seen


def add_server_tool_usage(usage: dict[str, Any], web_search_requests: int) -> dict[str, Any]:
    """Anthropic usage with `server_tool_use.web_search_requests` set (other counts kept)."""
    server = dict(usage.get("server_tool_use") or {})
    server["web_search_requests"] = web_search_requests
    server.setdefault("web_fetch_requests", 0)  # both counts are required in Anthropic's type
    return {**usage, "server_tool_use": server}


@step("web-search")
def record_web_search(query: str, results: int, searches: int) -> None:
    """Task: the web search OpenRouter ran inside the model call, shown as a step of the
    run with its query and what came back (a tag, a summary line and a log line)."""
    note_use("web_search", f"{query[:200]!r}: {results} results, {searches} searches")
    log.info("web search", query=query[:200], results=results, searches=searches)


def message_searches(message: dict[str, Any]) -> tuple[int, int]:
    """(results, searches) a non-stream answer shows: its result items, its usage count."""
    usage = message.get("usage") or {}
    searches = (usage.get("server_tool_use") or {}).get("web_search_requests") or 0
    results = sum(
        len(b.get("content") or [])
        for b in message.get("content") or ()
        if b.get("type") == "web_search_tool_result"
    )
    return results, searches if isinstance(searches, int) else 0


def finish_message(
    message: dict[str, Any], completion: dict[str, Any], query: str, tool_use_id: str
) -> dict[str, Any]:
    """Non-stream: the converted Anthropic `message` with the search shown Anthropic's way.

    With no annotations the message is returned as it was, apart from the usage count
    (a search that found nothing is still a search if OpenRouter counted it).
    """
    choices = completion.get("choices") or [{}]
    upstream_message = choices[0].get("message") or {}
    hits = annotations_in(upstream_message)
    requests = search_requests(completion.get("usage"), 1 if hits else 0)
    out = dict(message)
    if requests or hits:
        out["usage"] = add_server_tool_usage(message.get("usage") or {}, requests)
    if not hits:
        return out
    content = list(message.get("content") or [])
    texts = [b for b in content if b.get("type") == "text"]
    others = [b for b in content if b.get("type") != "text"]
    thinking = [b for b in others if b.get("type") in ("thinking", "redacted_thinking")]
    rest = [b for b in others if b.get("type") not in ("thinking", "redacted_thinking")]
    text = upstream_message.get("content")
    if not isinstance(text, str):
        text = "".join(b.get("text", "") for b in texts)
    out["content"] = [
        *thinking,
        use_block(tool_use_id, query),
        result_block(tool_use_id, hits),
        *cited_text_blocks(text, hits),
        *rest,
    ]
    return out


@dataclass
class WebSearchStream:
    """Stream: collects annotations as deltas bring them and frames the search blocks.

    How a stream converter uses it, per upstream delta (before handling its text):

        new = search.feed(delta)
        if new:
            if open block is text: emit each `search.citation_delta(h)` on it (the cited
                text was streamed already), then close it
            emit `search.block_events(next_index, tool_use_id)` (two blocks: index and
                index + 1), and carry on numbering from index + 2
        ...at the end: usage = add_server_tool_usage(usage, search.requests(raw_usage))
    """

    query: str
    hits: dict[str, Hit] = field(default_factory=dict)
    batches: int = 0

    def feed(self, delta: dict[str, Any]) -> list[Hit]:
        """The results this delta brings that were not seen before."""
        if not delta.get("annotations"):
            return []
        new = [h for h in annotations_in(delta) if h.url not in self.hits]
        for hit in new:
            self.hits[hit.url] = hit
        if new:
            self.batches += 1
        return new

    def citation_delta(self, hit: Hit) -> dict[str, Any]:
        return {"type": "citations_delta", "citation": citation(hit)}

    def block_events(self, index: int, tool_use_id: str, hits: list[Hit]) -> bytes:
        """SSE for `server_tool_use` at `index` and `web_search_tool_result` at index + 1.

        The query goes in an `input_json_delta`, as Anthropic streams it (Claude Code reads
        it from there to show "Searching: ...")."""
        start = {"type": "server_tool_use", "id": tool_use_id, "name": "web_search", "input": {}}
        query_json = orjson.dumps({"query": self.query}).decode()
        return (
            sse(
                "content_block_start",
                {"type": "content_block_start", "index": index, "content_block": start},
            )
            + sse(
                "content_block_delta",
                {
                    "type": "content_block_delta",
                    "index": index,
                    "delta": {"type": "input_json_delta", "partial_json": query_json},
                },
            )
            + sse("content_block_stop", {"type": "content_block_stop", "index": index})
            + sse(
                "content_block_start",
                {
                    "type": "content_block_start",
                    "index": index + 1,
                    "content_block": result_block(tool_use_id, hits),
                },
            )
            + sse("content_block_stop", {"type": "content_block_stop", "index": index + 1})
        )

    def requests(self, raw_usage: dict[str, Any] | None) -> int:
        return search_requests(raw_usage, self.batches)
