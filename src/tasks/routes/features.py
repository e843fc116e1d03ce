"""What a routing rule can ask about a request, read lazily from its raw JSON body.

Each property is computed on first use and kept: a rule table that only looks at the
model name never scans the conversation for images.
"""

from __future__ import annotations

from typing import Any

_UNSET: Any = object()


def _blocks(messages: Any) -> Any:
    """Every content block of the conversation, tool results' inner blocks included."""
    if not isinstance(messages, list):
        return
    for message in messages:
        content = message.get("content") if isinstance(message, dict) else None
        if not isinstance(content, list):
            continue
        for block in content:
            if not isinstance(block, dict):
                continue
            yield block
            inner = block.get("content")
            if block.get("type") == "tool_result" and isinstance(inner, list):
                yield from (b for b in inner if isinstance(b, dict))


class RequestFeatures:
    """The facts about one request that routes' conditions test."""

    __slots__ = ("body", "client", "input_tokens", "_kinds", "_tools", "_web_search")

    def __init__(self, body: dict[str, Any], client: str | None = None,
                 input_tokens: int | None = None) -> None:
        self.body = body
        self.client = client
        #: counted only when a rule needs it (see `NeedsTokens`)
        self.input_tokens = input_tokens
        self._kinds: Any = _UNSET
        self._tools: Any = _UNSET
        self._web_search: Any = _UNSET

    @property
    def model(self) -> str:
        model = self.body.get("model")
        return model if isinstance(model, str) else ""

    @property
    def stream(self) -> bool:
        return self.body.get("stream") is True

    @property
    def thinking(self) -> bool:
        thinking = self.body.get("thinking")
        return isinstance(thinking, dict) and thinking.get("type") in ("enabled", "adaptive")

    def _block_kinds(self) -> frozenset[str]:
        if self._kinds is _UNSET:
            self._kinds = frozenset(str(b.get("type")) for b in _blocks(self.body.get("messages")))
        return self._kinds

    @property
    def images(self) -> bool:
        return "image" in self._block_kinds()

    @property
    def documents(self) -> bool:
        return "document" in self._block_kinds()

    @property
    def tool_names(self) -> frozenset[str]:
        if self._tools is _UNSET:
            tools = self.body.get("tools")
            self._tools = frozenset(
                str(t.get("name")) for t in tools if isinstance(t, dict)
            ) if isinstance(tools, list) else frozenset()
        return self._tools

    @property
    def web_search(self) -> bool:
        if self._web_search is _UNSET:
            tools = self.body.get("tools")
            self._web_search = isinstance(tools, list) and any(
                isinstance(t, dict) and str(t.get("type", "")).startswith("web_search")
                for t in tools)
        return self._web_search
