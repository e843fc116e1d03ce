"""What a routing rule can ask about a request, read lazily from its raw JSON body.

Each property is computed on first use and kept: a rule table that only looks at the
model name never scans the conversation for images.
"""

from __future__ import annotations

from typing import Any

_UNSET: Any = object()


def block_kinds(messages: Any) -> frozenset[str]:
    """The `type` of every content block of the conversation, tool results' inner blocks
    included. One comprehension per level: Claude Code sends hundreds of blocks a turn,
    and this runs on every request a rule about images or documents sees."""
    if type(messages) is not list:
        return frozenset()
    contents = [c for m in messages if type(m) is dict and type(c := m.get("content")) is list]
    kinds = {b.get("type") for c in contents for b in c if type(b) is dict}
    if "tool_result" in kinds and not {"image", "document"} <= kinds:
        kinds.update(
            x.get("type")
            for c in contents
            for b in c
            if type(b) is dict and type(inner := b.get("content")) is list
            for x in inner
            if type(x) is dict
        )
    return frozenset(k for k in kinds if isinstance(k, str))


class RequestFeatures:
    """The facts about one request that routes' conditions test."""

    __slots__ = (
        "_kinds",
        "_tools",
        "_web_search",
        "body",
        "client",
        "input_tokens",
        "model",
        "stream",
        "thinking",
    )

    def __init__(
        self, body: dict[str, Any], client: str | None = None, input_tokens: int | None = None
    ) -> None:
        self.body = body
        model = body.get("model")
        #: the model name the client asked for
        self.model: str = model if isinstance(model, str) else ""
        #: the request streams
        self.stream: bool = body.get("stream") is True
        thinking = body.get("thinking")
        #: the request asks for extended thinking
        self.thinking: bool = isinstance(thinking, dict) and thinking.get("type") in (
            "enabled",
            "adaptive",
        )
        self.client = client
        #: counted only when a rule needs it (see `NeedsTokens`)
        self.input_tokens = input_tokens
        self._kinds: Any = _UNSET
        self._tools: Any = _UNSET
        self._web_search: Any = _UNSET

    def _block_kinds(self) -> frozenset[str]:
        if self._kinds is _UNSET:
            self._kinds = block_kinds(self.body.get("messages"))
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
            self._tools = (
                frozenset(str(t.get("name")) for t in tools if isinstance(t, dict))
                if isinstance(tools, list)
                else frozenset()
            )
        return self._tools

    @property
    def web_search(self) -> bool:
        if self._web_search is _UNSET:
            tools = self.body.get("tools")
            self._web_search = isinstance(tools, list) and any(
                isinstance(t, dict) and str(t.get("type", "")).startswith("web_search")
                for t in tools
            )
        return self._web_search
