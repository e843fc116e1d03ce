"""Thinking, both ways: Anthropic's `thinking` config and blocks, OpenRouter's `reasoning`.

Request: `thinking` (`enabled` + `budget_tokens`, `adaptive`, `disabled`) and
`output_config.effort` become OpenRouter's `reasoning` (`max_tokens` / `effort` /
`enabled`). Response: `reasoning_details` entries become blocks, in order:
`reasoning.text` and `reasoning.summary` -> `thinking`, `reasoning.encrypted` ->
`redacted_thinking`.

Round trip: models that need their reasoning back (Anthropic's signed thinking, Gemini's
thought signatures, OpenAI's encrypted reasoning) get it back only if the detail's
`signature`, `format` and `id` survive the client. The client keeps exactly two opaque
strings for us, a thinking block's `signature` and a redacted block's `data`, so those
carry the detail's metadata as an envelope (`oas1:` + base64url JSON). A signature
without the envelope (a conversation that began on Anthropic's API) is passed on as an
Anthropic signature.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

import orjson

from src.schemas.anthropic import MessagesRequest, RedactedThinkingBlock, ThinkingBlock

ENVELOPE = "oas1:"
_ANTHROPIC_FORMAT = "anthropic-claude-v1"
_META_KEYS = ("type", "signature", "format", "id")

# Anthropic's `output_config.effort` -> OpenRouter's `reasoning.effort`.
_EFFORT = {
    "low": "low",
    "medium": "medium",
    "high": "high",
    "xhigh": "xhigh",
    "max": "xhigh",
    "minimal": "minimal",
    "none": "none",
}


def reasoning_param(request: MessagesRequest) -> dict[str, Any] | None:
    """OpenRouter's `reasoning` object for this request, or None to leave the default."""
    thinking = request.thinking
    effort = request.output_config.effort if request.output_config else None
    mapped_effort = _EFFORT.get(effort.lower()) if isinstance(effort, str) else None
    if thinking is None:
        return {"effort": mapped_effort} if mapped_effort else None
    if thinking.type == "disabled":
        return {"enabled": False}
    if thinking.type == "enabled" and thinking.budget_tokens:
        return {"max_tokens": thinking.budget_tokens}
    if mapped_effort:  # adaptive (or a newer kind) with an effort level
        return {"effort": mapped_effort}
    return {"enabled": True}


def thinking_hidden(request: MessagesRequest | None) -> bool:
    """`display: "omitted"`: thinking blocks keep their signature but not their text."""
    return bool(request and request.thinking and request.thinking.display == "omitted")


# -- envelopes ---------------------------------------------------------------------------


def _pack(meta: dict[str, Any]) -> str:
    return ENVELOPE + base64.urlsafe_b64encode(orjson.dumps(meta)).rstrip(b"=").decode()


def _unpack(value: str | None) -> dict[str, Any] | None:
    if not value or not value.startswith(ENVELOPE):
        return None
    body = value[len(ENVELOPE) :]
    try:
        meta = orjson.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    except (binascii.Error, ValueError, orjson.JSONDecodeError):
        return None
    return meta if isinstance(meta, dict) else None


def signature_for(meta: dict[str, Any]) -> str:
    """The `signature` a thinking block carries for one reasoning detail's metadata."""
    return _pack({k: meta[k] for k in _META_KEYS if meta.get(k)})


def redacted_data_for(detail: dict[str, Any]) -> str:
    """The `data` of a redacted_thinking block: the whole encrypted detail, enveloped."""
    return _pack({k: v for k, v in detail.items() if v is not None and k != "index"})


# -- history -> reasoning_details ---------------------------------------------------------


def reasoning_details(blocks: list[ThinkingBlock | RedactedThinkingBlock]) -> list[dict[str, Any]]:
    """The `reasoning_details` of an assistant turn, from its thinking blocks, in order."""
    out: list[dict[str, Any]] = []
    for block in blocks:
        if isinstance(block, ThinkingBlock):
            detail = _text_detail(block)
        else:
            detail = _unpack(block.data) or {
                "type": "reasoning.encrypted",
                "data": block.data,
                "format": _ANTHROPIC_FORMAT,
            }
        detail["index"] = len(out)
        out.append(detail)
    return out


def _text_detail(block: ThinkingBlock) -> dict[str, Any]:
    meta = _unpack(block.signature)
    if meta is None:
        detail: dict[str, Any] = {"type": "reasoning.text", "text": block.thinking}
        if block.signature:
            detail["signature"] = block.signature
            detail["format"] = _ANTHROPIC_FORMAT
        return detail
    kind = meta.get("type") or "reasoning.text"
    detail = {"type": kind}
    detail["summary" if kind == "reasoning.summary" else "text"] = block.thinking
    for key in ("signature", "format", "id"):
        if meta.get(key):
            detail[key] = meta[key]
    return detail
