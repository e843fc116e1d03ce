"""What a model reads of a fetched page: HTML as markdown, PDFs and plain text as text.

HTML goes through trafilatura: it finds the main content (dropping menus, footers and
cookie banners, which would otherwise fill the model's context), keeps headings, lists,
tables and links as markdown, and makes links absolute. It is maintained, Apache-2.0, and
built on lxml, so it copes with broken real-world markup. When it finds no main content
(a tiny page, a link list) its plain-text rendering of the whole page is used instead.
PDFs go through pypdf (pure Python, no system libraries).

Both are CPU work, so callers run `page_text` in a thread.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass

HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
PDF_TYPES = frozenset({"application/pdf", "application/x-pdf"})
TEXT_TYPES = frozenset(
    {
        "application/json",
        "application/xml",
        "application/javascript",
        "application/x-yaml",
        "application/yaml",
        "application/ld+json",
        "application/rss+xml",
        "application/atom+xml",
        "application/x-ndjson",
    }
)

_TITLE = re.compile(rb"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)


class UnsupportedContent(Exception):
    """A content type the model cannot read as text (images, archives, binaries)."""


@dataclass(frozen=True, slots=True)
class PageText:
    text: str
    title: str | None


def supported(media_type: str) -> bool:
    return (
        media_type in HTML_TYPES
        or media_type in PDF_TYPES
        or media_type in TEXT_TYPES
        or media_type.startswith("text/")
    )


def page_text(body: bytes, media_type: str, charset: str | None, url: str) -> PageText:
    """The readable text of a response body (raises `UnsupportedContent`)."""
    if media_type in HTML_TYPES:
        return _html(body, charset, url)
    if media_type in PDF_TYPES:
        return _pdf(body)
    if media_type.startswith("text/") or media_type in TEXT_TYPES:
        return PageText(_decode(body, charset), None)
    raise UnsupportedContent(media_type)


def sniff_media_type(body: bytes) -> str | None:
    """A type for bodies served without (or with a useless) Content-Type."""
    head = body[:512].lstrip().lower()
    if head.startswith(b"%pdf-"):
        return "application/pdf"
    if head.startswith((b"<!doctype html", b"<html")) or b"<body" in head:
        return "text/html"
    return None


def _decode(body: bytes, charset: str | None) -> str:
    if charset:
        try:
            return body.decode(charset, errors="replace")
        except LookupError:
            pass
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        from charset_normalizer import from_bytes

        best = from_bytes(body).best()
        return str(best) if best is not None else body.decode("utf-8", errors="replace")


def _html(body: bytes, charset: str | None, url: str) -> PageText:
    import trafilatura

    html = _decode(body, charset)
    text = trafilatura.extract(
        html,
        url=url,
        output_format="markdown",
        include_links=True,
        include_tables=True,
        include_comments=False,
        favor_recall=True,
    )
    if not text or not text.strip():
        text = trafilatura.html2txt(html)
    return PageText(text.strip(), _html_title(body, html))


def _html_title(body: bytes, html: str) -> str | None:
    match = _TITLE.search(body[:65536])
    if match:
        title = re.sub(r"\s+", " ", match.group(1).decode("utf-8", errors="replace")).strip()
        if title:
            import html as html_lib

            return html_lib.unescape(title)[:500]
    import trafilatura

    metadata = trafilatura.extract_metadata(html)
    return metadata.title if metadata is not None and metadata.title else None


def _pdf(body: bytes) -> PageText:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(body))
        pages = [page.extract_text() or "" for page in reader.pages]
        title = reader.metadata.title if reader.metadata is not None else None
    except (PdfReadError, ValueError, KeyError, TypeError) as exc:
        raise UnsupportedContent(f"unreadable PDF: {exc}") from None
    text = "\n\n".join(p.strip() for p in pages if p.strip())
    return PageText(text, str(title) if title else None)
