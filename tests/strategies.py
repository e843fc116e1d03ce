"""Hypothesis strategies for Anthropic Messages requests: valid ones (as Claude Code and
the SDKs send them, unknown fields included) and broken ones (each a valid request with
one thing wrong, or not a request at all)."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

MODELS = st.sampled_from(
    [
        "big",
        "small",
        "claude-sonnet-4-5-20250929",
        "claude-opus-4-1",
        "claude-3-5-haiku-latest",
        "openai/gpt-4o",
        "some-local-model",
    ]
) | st.text(min_size=1, max_size=40).filter(str.strip)  # any name passes through upstream
TEXT = st.text(max_size=60)
NAME = st.from_regex(r"[a-zA-Z][a-zA-Z0-9_-]{0,20}", fullmatch=True)
TOOL_ID = st.from_regex(r"toolu_[A-Za-z0-9]{6,12}", fullmatch=True)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**6), 10**6)
    | st.floats(allow_nan=False, allow_infinity=False)
    | TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=12,
)

cache_control = st.just({"type": "ephemeral"})


def _maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.none() | strategy


text_block = st.builds(
    lambda t, c: {"type": "text", "text": t, **({"cache_control": c} if c else {})},
    TEXT,
    _maybe(cache_control),
)
image_block = st.builds(
    lambda data: {
        "type": "image",
        "source": {"type": "base64", "media_type": "image/png", "data": data},
    },
    st.from_regex(r"[A-Za-z0-9+/]{4,40}={0,2}", fullmatch=True),
)
tool_use_block = st.builds(
    lambda i, n, inp: {"type": "tool_use", "id": i, "name": n, "input": inp},
    TOOL_ID,
    NAME,
    st.dictionaries(NAME, json_values, max_size=3),
)
tool_result_block = st.builds(
    lambda i, c, e: {
        "type": "tool_result",
        "tool_use_id": i,
        "content": c,
        **({"is_error": e} if e is not None else {}),
    },
    TOOL_ID,
    TEXT | st.lists(text_block, max_size=2),
    _maybe(st.booleans()),
)
thinking_block = st.builds(
    lambda t, s: {"type": "thinking", "thinking": t, "signature": s}, TEXT, TEXT
)
unknown_block = st.builds(
    lambda t, extra: {"type": t, **extra},
    st.sampled_from(["container_upload", "mcp_tool_use", "future_block"]),
    st.dictionaries(NAME, json_values, max_size=2),
)

# Lists start with a text block: a turn of only images or unknown blocks is not one the
# API (or an upstream) takes.
user_content = TEXT | st.builds(
    lambda first, rest: [first, *rest],
    text_block,
    st.lists(text_block | image_block | tool_result_block | unknown_block, max_size=2),
)
assistant_content = TEXT | st.builds(
    lambda first, rest: [first, *rest],
    text_block,
    st.lists(text_block | tool_use_block | thinking_block, max_size=2),
)


@st.composite
def conversations(draw: st.DrawFn) -> list[dict[str, Any]]:
    turns = draw(st.integers(1, 5))
    messages = []
    for n in range(turns):
        role = "user" if n % 2 == 0 else "assistant"
        content = draw(user_content if role == "user" else assistant_content)
        messages.append({"role": role, "content": content})
    if messages[-1]["role"] == "assistant":
        messages.append({"role": "user", "content": draw(TEXT)})
    return messages


tools = st.lists(
    st.builds(
        lambda n, d, props: {
            "name": n,
            "description": d,
            "input_schema": {
                "type": "object",
                "properties": {p: {"type": "string"} for p in props},
            },
        },
        NAME,
        TEXT,
        st.lists(NAME, max_size=3),
    ),
    max_size=3,
    unique_by=lambda t: t["name"],
)


@st.composite
def valid_requests(draw: st.DrawFn) -> dict[str, Any]:
    """A request the Messages API accepts."""
    request: dict[str, Any] = {
        "model": draw(MODELS),
        "max_tokens": draw(st.integers(1, 64000)),
        "messages": draw(conversations()),
    }
    optional: dict[str, st.SearchStrategy[Any]] = {
        "system": TEXT | st.lists(text_block, max_size=2),
        "stream": st.booleans(),
        "temperature": st.floats(0, 1),
        "top_p": st.floats(0, 1),
        "top_k": st.integers(0, 500),
        "stop_sequences": st.lists(TEXT.filter(bool), max_size=3),
        "metadata": st.fixed_dictionaries({"user_id": TEXT}),
        "thinking": st.fixed_dictionaries(
            {"type": st.just("enabled"), "budget_tokens": st.integers(1024, 8000)}
        ),
        "service_tier": st.sampled_from(["auto", "standard_only"]),
        "some_future_field": json_values,  # Claude Code adds fields every month
    }
    for name in draw(st.lists(st.sampled_from(sorted(optional)), unique=True, max_size=5)):
        request[name] = draw(optional[name])
    if draw(st.booleans()):
        request["tools"] = draw(tools)
        if request["tools"] and draw(st.booleans()):
            request["tool_choice"] = draw(
                st.sampled_from(
                    [
                        {"type": "auto"},
                        {"type": "any"},
                        {"type": "none"},
                        {"type": "tool", "name": request["tools"][0]["name"]},
                    ]
                )
            )
    return request


def _set_path(value: Any, path: list[Any], new: Any) -> Any:
    target = value
    for key in path[:-1]:
        target = target[key]
    if new is _DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = new
    return value


_DELETE = object()


def _numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


# Pydantic (lax) reads "5" as 5; the strictness of number fields is not what is tested here.
NOT_A_NUMBER = TEXT.filter(lambda t: not _numeric(t))

# (where, what goes there) pairs that make a valid request invalid
_BREAKAGES: list[tuple[list[Any], st.SearchStrategy[Any]]] = [
    (["model"], st.just(_DELETE) | st.just("") | st.integers() | st.none() | st.lists(TEXT)),
    (
        ["max_tokens"],
        st.just(_DELETE)
        | st.integers(max_value=0)
        | NOT_A_NUMBER
        | st.none()
        | st.floats(0.1, 1e6).filter(lambda f: not f.is_integer()),
    ),
    (
        ["messages"],
        st.just(_DELETE)
        | st.just([])
        | TEXT
        | st.dictionaries(TEXT, TEXT, max_size=2)
        | st.lists(st.integers(), min_size=1, max_size=3),
    ),
    (
        ["messages", 0, "role"],
        st.just(_DELETE) | TEXT.filter(lambda r: r not in ("user", "assistant", "system")),
    ),
    (
        ["messages", 0, "content"],
        st.just(_DELETE)
        | st.integers()
        | st.none()
        | st.lists(st.integers() | st.none() | st.just({"no_type": 1}), min_size=1, max_size=3),
    ),
    (
        ["temperature"],
        st.floats(min_value=2.0001, allow_infinity=False)
        | st.floats(max_value=-0.0001, allow_infinity=False)
        | NOT_A_NUMBER,
    ),
    (["top_p"], st.floats(min_value=1.0001, allow_infinity=False) | NOT_A_NUMBER),
    (
        ["stream"],
        TEXT.filter(
            lambda s: (
                s.strip().lower()
                not in ("true", "false", "1", "0", "yes", "no", "on", "off", "t", "f", "y", "n")
            )
        )
        | st.dictionaries(TEXT, TEXT, min_size=1, max_size=2),
    ),
    (["tools"], TEXT | st.lists(st.integers(), min_size=1, max_size=2)),
    (
        ["tool_choice"],
        st.fixed_dictionaries(
            {"type": TEXT.filter(lambda t: t not in ("auto", "any", "tool", "none"))}
        ),
    ),
    (["system"], st.integers() | st.lists(st.integers(), min_size=1, max_size=2)),
]


@st.composite
def broken_requests(draw: st.DrawFn) -> Any:
    """Something the Messages API refuses with a 400."""
    kind = draw(st.sampled_from(["field", "not-an-object"]))
    if kind == "not-an-object":
        return draw(
            st.lists(json_values, max_size=3) | TEXT | st.integers() | st.none() | st.booleans()
        )
    request = draw(valid_requests())
    path, values = draw(st.sampled_from(_BREAKAGES))
    return _set_path(request, path, draw(values))


def anything() -> st.SearchStrategy[Any]:
    """Any JSON at all, request-shaped or not: the server must never fail on it."""
    return (
        json_values
        | valid_requests()
        | broken_requests()
        | st.builds(
            lambda base, extra: {**base, **extra},
            valid_requests(),
            st.dictionaries(
                st.sampled_from(
                    [
                        "model",
                        "max_tokens",
                        "messages",
                        "system",
                        "tools",
                        "stream",
                        "tool_choice",
                        "thinking",
                        "metadata",
                    ]
                ),
                json_values,
                max_size=3,
            ),
        )
    )
