"""Web search results as Anthropic's blocks: `web_search_tool_result`, its result items,
and text blocks carrying `web_search_result_location` citations.

OpenRouter's `url_citation` annotations come in as `Hit`s. `encrypted_content` and
`encrypted_index` are opaque to clients; here they carry the result (url, title, snippet)
as base64 JSON, so that when a client sends the blocks back in a later turn,
`decode_opaque` gives the model the text it saw (see `history.py`).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

import orjson

MAX_CITED_TEXT = 150  # Anthropic's cited_text is at most 150 characters


@dataclass(frozen=True, slots=True)
class Hit:
    """One `url_citation` annotation, normalised (OpenRouter nests it under `url_citation`
    in chat completions and sends it flat elsewhere)."""

    url: str
    title: str
    snippet: str = ""
    start: int | None = None
    end: int | None = None


def annotations_in(message: dict[str, Any] | None) -> list[Hit]:
    """The `url_citation` annotations of a message or a stream delta."""
    hits: list[Hit] = []
    for item in (message or {}).get("annotations") or ():
        if not isinstance(item, dict) or item.get("type") != "url_citation":
            continue
        nested = item.get("url_citation")
        data: dict[str, Any] = nested if isinstance(nested, dict) else item
        url = data.get("url")
        if not isinstance(url, str) or not url:
            continue
        start, end = data.get("start_index"), data.get("end_index")
        hits.append(
            Hit(
                url=url,
                title=str(data.get("title") or url),
                snippet=str(data.get("content") or ""),
                start=start if isinstance(start, int) else None,
                end=end if isinstance(end, int) else None,
            )
        )
    return hits


def opaque(hit: Hit) -> str:
    """`encrypted_content` / `encrypted_index`: the result itself, base64 JSON."""
    data = {"url": hit.url, "title": hit.title, "snippet": hit.snippet}
    return base64.urlsafe_b64encode(orjson.dumps(data)).decode()


def decode_opaque(value: str) -> dict[str, str] | None:
    """The result inside an `encrypted_*` value made by `opaque`; None for foreign ones
    (Anthropic's real ones, say)."""
    try:
        data = orjson.loads(base64.urlsafe_b64decode(value.encode()))
    except (ValueError, TypeError, orjson.JSONDecodeError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("url"), str) else None


def unique_results(hits: list[Hit]) -> list[Hit]:
    """One result per URL, in the order they were cited."""
    seen: dict[str, Hit] = {}
    for hit in hits:
        seen.setdefault(hit.url, hit)
    return list(seen.values())


def use_block(tool_use_id: str, query: str) -> dict[str, Any]:
    return {
        "type": "server_tool_use",
        "id": tool_use_id,
        "name": "web_search",
        "input": {"query": query},
    }


def result_item(hit: Hit) -> dict[str, Any]:
    return {
        "type": "web_search_result",
        "url": hit.url,
        "title": hit.title,
        "encrypted_content": opaque(hit),
        "page_age": None,
    }


def result_block(tool_use_id: str, hits: list[Hit]) -> dict[str, Any]:
    return {
        "type": "web_search_tool_result",
        "tool_use_id": tool_use_id,
        "content": [result_item(h) for h in unique_results(hits)],
    }


def citation(hit: Hit, cited_text: str = "") -> dict[str, Any]:
    text = (hit.snippet or cited_text or hit.title).strip()
    return {
        "type": "web_search_result_location",
        "url": hit.url,
        "title": hit.title,
        "encrypted_index": opaque(hit),
        "cited_text": text[:MAX_CITED_TEXT],
    }


def cited_text_blocks(text: str, hits: list[Hit]) -> list[dict[str, Any]]:
    """`text` split into text blocks, the cited spans carrying their citations.

    Spans come from the annotations' `start_index`/`end_index`; overlapping or
    out-of-range spans are skipped. Without any usable span, the whole text cites every
    result (the sources are still attached to the answer they informed).
    """
    spans: dict[tuple[int, int], list[Hit]] = {}
    for hit in hits:
        if hit.start is not None and hit.end is not None and 0 <= hit.start < hit.end <= len(text):
            spans.setdefault((hit.start, hit.end), []).append(hit)
    if not spans:
        if not text:
            return []
        return [
            {
                "type": "text",
                "text": text,
                "citations": [citation(h, text) for h in unique_results(hits)],
            }
        ]
    blocks: list[dict[str, Any]] = []
    position = 0
    for (start, end), cited in sorted(spans.items()):
        if start < position:
            continue
        if start > position:
            blocks.append({"type": "text", "text": text[position:start]})
        span = text[start:end]
        blocks.append(
            {"type": "text", "text": span, "citations": [citation(h, span) for h in cited]}
        )
        position = end
    if position < len(text):
        blocks.append({"type": "text", "text": text[position:]})
    return blocks
