"""Anthropic content blocks as OpenAI content parts (OpenRouter's dialect).

text -> `text` parts; image (base64 or url) -> `image_url`; document: PDFs (base64 or url)
-> OpenRouter `file` parts, plain text and content sources -> text, with the document's
`title` and `context` kept in a text part before it; search_result -> text naming its
source. `cache_control` rides on the part it marks when the upstream honours it.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from src.schemas.anthropic import (
    DocumentBlock,
    ImageBlock,
    SearchResultBlock,
    TextBlock,
    ToolResultBlock,
)
from src.tasks.conversion.dropped import note_dropped

Part = dict[str, Any]


def cache_marked(part: Part, block: Any, keep_cache: bool) -> Part:
    """`part` with the block's `cache_control` when the upstream honours it."""
    cache = getattr(block, "cache_control", None)
    if keep_cache and cache is not None:
        part["cache_control"] = cache.model_dump(exclude_none=True)
    return part


def text_part(text: str) -> Part:
    return {"type": "text", "text": text}


def image_part(block: ImageBlock) -> Part | None:
    """An `image_url` part; a source with no upstream form (Files API ids) is dropped."""
    source = block.source
    if source.type == "base64" and source.data:
        url = f"data:{source.media_type or 'image/png'};base64,{source.data}"
    elif source.type == "url" and source.url:
        url = source.url
    else:
        note_dropped(f"image source {source.type}", "no upstream equivalent (Files API ids)")
        return None
    return {"type": "image_url", "image_url": {"url": url}}


def _heading(title: str | None, context: str | None) -> str:
    lines = []
    if title:
        lines.append(f"Document title: {title}")
    if context:
        lines.append(f"Document context: {context}")
    return "\n".join(lines)


def _file_part(title: str | None, media_type: str, file_data: str) -> Part:
    extension = media_type.rsplit("/", 1)[-1] if "/" in media_type else "bin"
    filename = title if title and "." in title[-6:] else f"{title or 'document'}.{extension}"
    return {"type": "file", "file": {"filename": filename, "file_data": file_data}}


def document_parts(block: DocumentBlock) -> list[Part]:
    """A document as parts: a heading with title/context, then the file or its text."""
    source = block.source
    kind = source.get("type")
    media_type = str(source.get("media_type") or "application/pdf")
    heading = _heading(block.title, block.context)
    body: list[Part] = []
    if kind == "base64" and source.get("data"):
        data = str(source["data"])
        if media_type.startswith("text/"):
            body.append(text_part(_decoded_text(data)))
        elif media_type.startswith("image/"):
            url = f"data:{media_type};base64,{data}"
            body.append({"type": "image_url", "image_url": {"url": url}})
        else:
            body.append(_file_part(block.title, media_type, f"data:{media_type};base64,{data}"))
    elif kind == "url" and source.get("url"):
        body.append(_file_part(block.title, media_type, str(source["url"])))
    elif kind == "text" and isinstance(source.get("data"), str):
        text = source["data"]
        return [text_part(f"{heading}\n\n{text}" if heading else text)]
    elif kind == "content":
        body.extend(_source_content_parts(source.get("content")))
    else:
        note_dropped(f"document source {kind}", "no upstream equivalent (Files API ids)")
        return []
    return ([text_part(heading)] if heading else []) + body


def _decoded_text(data: str) -> str:
    try:
        return base64.b64decode(data).decode("utf-8", "replace")
    except (binascii.Error, ValueError):
        return data


def _source_content_parts(content: Any) -> list[Part]:
    if isinstance(content, str):
        return [text_part(content)]
    parts: list[Part] = []
    for item in content or ():
        if not isinstance(item, dict):
            continue
        if item.get("type") == "text" and isinstance(item.get("text"), str):
            parts.append(text_part(item["text"]))
        elif item.get("type") == "image":
            try:
                image = image_part(ImageBlock.model_validate(item))
            except ValueError:
                image = None
            if image is not None:
                parts.append(image)
    return parts


def search_result_text(block: SearchResultBlock) -> str:
    """A search result as text that names where it came from."""
    body = "\n\n".join(t.text for t in block.content if t.text)
    return f"Search result: {block.title}\nSource: {block.source}\n\n{body}"


def block_parts(block: Any, keep_cache: bool, where: str) -> list[Part]:
    """The parts for one user-side content block (text, image, document, search result)."""
    if isinstance(block, TextBlock):
        parts = [text_part(block.text)]
    elif isinstance(block, ImageBlock):
        image = image_part(block)
        parts = [image] if image is not None else []
    elif isinstance(block, DocumentBlock):
        parts = document_parts(block)
    elif isinstance(block, SearchResultBlock):
        parts = [text_part(search_result_text(block))]
    elif getattr(block, "type", None) == "tool_reference":
        name = getattr(block, "tool_name", None) or ""
        # Claude Code's ToolSearch answers with references to the tools it just loaded;
        # without a line of text the model would see an empty result.
        parts = [text_part(f"Tool loaded: {name}")]
    else:
        note_dropped(f"{where} block {getattr(block, 'type', '?')}", "no upstream equivalent")
        return []
    if parts:
        cache_marked(parts[-1], block, keep_cache)
    return parts


def tool_result_parts(block: ToolResultBlock, keep_cache: bool) -> tuple[list[Part], list[Part]]:
    """(text parts for the `tool` message, media parts for the next user message).

    A `tool` message holds text only, so images and files a tool returned reach the
    model in the user message that follows the tool messages.
    """
    content = block.content
    if content is None or isinstance(content, str):
        texts = [text_part(content or "")]
        media: list[Part] = []
    else:
        texts, media = [], []
        for item in content:
            for part in block_parts(item, keep_cache, "tool_result"):
                (texts if part["type"] == "text" else media).append(part)
    if block.is_error:
        first = texts[0]["text"] if texts else ""
        error_text = f"Error: {first}" if first else "Error: the tool call failed"
        if texts:
            texts[0] = {**texts[0], "text": error_text}
        else:
            texts = [text_part(error_text)]
    if not any(p["text"] for p in texts):
        # Several providers refuse empty tool results; say plainly there was no output.
        texts = [text_part("(no output)" if not media else "(see the attached content)")]
    if texts:
        cache_marked(texts[-1], block, keep_cache)
    return texts, media


def collapse(parts: list[Part], separator: str = "\n") -> str | list[Part]:
    """Plain text when the parts are all text and unmarked, else the parts themselves."""
    if all(p["type"] == "text" and "cache_control" not in p for p in parts):
        return separator.join(p["text"] for p in parts)
    return parts
