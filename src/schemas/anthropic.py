"""The Anthropic Messages request, as Pydantic models.

Validation follows the API's own rules for the fields it requires; everything else is
tolerated (`extra="allow"`), because Claude Code adds new fields every month and a proxy
that rejects them breaks its users. Content blocks of a type we do not know are kept as
`UnknownBlock` so the converter can decide (and log) what to do with them.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, StrictBool, Tag, model_validator


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class CacheControl(_Open):
    type: str = "ephemeral"


class TextBlock(_Open):
    type: Literal["text"]
    text: str
    cache_control: CacheControl | None = None


class ImageSource(_Open):
    type: str  # "base64", "url", "file" today; a new kind is dropped, not refused
    media_type: str | None = None
    data: str | None = None
    url: str | None = None
    file_id: str | None = None

    @model_validator(mode="after")
    def _has_what_its_type_needs(self) -> ImageSource:
        needs = {"base64": ("data", "media_type"), "url": ("url",), "file": ("file_id",)}
        for name in needs.get(self.type, ()):
            if not getattr(self, name):
                raise ValueError(f"a `{self.type}` image source needs `{name}`")
        return self


class ImageBlock(_Open):
    type: Literal["image"]
    source: ImageSource
    cache_control: CacheControl | None = None


class DocumentBlock(_Open):
    type: Literal["document"]
    source: dict[str, Any]
    title: str | None = None
    context: str | None = None
    cache_control: CacheControl | None = None


class SearchResultBlock(_Open):
    type: Literal["search_result"]
    source: str
    title: str
    content: list[TextBlock]
    cache_control: CacheControl | None = None


class ToolUseBlock(_Open):
    type: Literal["tool_use"]
    id: str
    name: str
    input: Any = None
    cache_control: CacheControl | None = None


class ThinkingBlock(_Open):
    type: Literal["thinking"]
    thinking: str
    signature: str | None = None
    cache_control: CacheControl | None = None


class RedactedThinkingBlock(_Open):
    type: Literal["redacted_thinking"]
    data: str
    cache_control: CacheControl | None = None


class UnknownBlock(_Open):
    """A block type this server does not know yet: kept, and dealt with in one place."""

    type: str


_KNOWN_BLOCKS = {
    "text",
    "image",
    "document",
    "search_result",
    "tool_use",
    "tool_result",
    "thinking",
    "redacted_thinking",
}


def _block_tag(value: Any) -> str:
    kind = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
    # a `type` that is not a string (a list, an object) is an unknown block, not a crash
    return kind if isinstance(kind, str) and kind in _KNOWN_BLOCKS else "unknown"


ContentBlock = Annotated[
    Annotated[TextBlock, Tag("text")]
    | Annotated[ImageBlock, Tag("image")]
    | Annotated[DocumentBlock, Tag("document")]
    | Annotated[SearchResultBlock, Tag("search_result")]
    | Annotated[ToolUseBlock, Tag("tool_use")]
    | Annotated["ToolResultBlock", Tag("tool_result")]
    | Annotated[ThinkingBlock, Tag("thinking")]
    | Annotated[RedactedThinkingBlock, Tag("redacted_thinking")]
    | Annotated[UnknownBlock, Tag("unknown")],
    Discriminator(_block_tag),
]


class ToolResultBlock(_Open):
    """A tool's answer: text, or blocks (text, image, document, search_result, ...)."""

    type: Literal["tool_result"]
    tool_use_id: str
    content: str | list[ContentBlock] | None = None
    is_error: StrictBool | None = None
    cache_control: CacheControl | None = None


class Message(_Open):
    role: Literal["user", "assistant", "system"]
    content: str | list[ContentBlock]


class Tool(_Open):
    """A client tool (`input_schema`) or a server tool (`type` such as `web_search_20250305`).

    Server tools and tool sets (`mcp_toolset`) may have no `name`; a client tool must.
    Fields such as `defer_loading`, `strict`, `input_examples` and
    `eager_input_streaming` are kept as extras.
    """

    name: str | None = None
    type: str | None = None
    description: str | None = None
    input_schema: dict[str, Any] | None = None
    cache_control: CacheControl | None = None

    @model_validator(mode="after")
    def _client_tools_have_names(self) -> Tool:
        if not self.is_server_tool and not self.name:
            raise ValueError("a client tool needs a `name`")
        return self

    @property
    def is_server_tool(self) -> bool:
        """Anthropic's own tools carry a dated `type`; client tools have none or `custom`."""
        return self.type not in (None, "custom")


class ToolChoice(_Open):
    type: Literal["auto", "any", "tool", "none"]
    name: str | None = None
    disable_parallel_tool_use: StrictBool | None = None

    @model_validator(mode="after")
    def _tool_needs_a_name(self) -> ToolChoice:
        if self.type == "tool" and not self.name:
            raise ValueError("`tool_choice` of type `tool` needs a `name`")
        return self


class Thinking(_Open):
    """`enabled` (with `budget_tokens`), `adaptive`, `disabled`; newer kinds are tolerated."""

    type: str
    budget_tokens: int | None = Field(None, ge=0)
    display: str | None = None  # "summarized" | "omitted"


class OutputConfig(_Open):
    """`output_config`: `effort` (low ... max) and `format` (a JSON schema for the answer)."""

    effort: str | None = None
    format: dict[str, Any] | None = None


class Metadata(_Open):
    user_id: str | None = None


class MessagesRequest(_Open):
    """`POST /v1/messages`: the fields the API requires are required here too."""

    model: str = Field(min_length=1)
    messages: list[Message]
    max_tokens: int = Field(ge=1)
    system: str | list[TextBlock] | None = None
    stream: StrictBool = False  # "yes", 1 or "true" are a 400, as Anthropic answers
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    top_p: float | None = Field(None, ge=0.0, le=1.0)
    top_k: int | None = Field(None, ge=0)
    stop_sequences: list[str] | None = None
    tools: list[Tool] | None = None
    tool_choice: ToolChoice | None = None
    thinking: Thinking | None = None
    metadata: Metadata | None = None
    output_config: OutputConfig | None = None
    cache_control: CacheControl | None = None


ToolResultBlock.model_rebuild()
Message.model_rebuild()
