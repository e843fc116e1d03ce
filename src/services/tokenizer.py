"""The token counter: LiteLLM's tokenizers, loaded once per process, and a cache of counts.

Counts use only tokenizers that ship inside installed packages (tiktoken's encodings and
the tokenizer files in LiteLLM's wheel); tokenizers LiteLLM would download from a hub are
replaced by its default one.

Claude Code sends the same 50-300 KB of system prompt, tool list and history again every
turn, so nothing is tokenized twice: LiteLLM's count is a sum over messages plus a part
for the tools (and tool choice), and each of those parts is cached under the hash of
its converted content. A repeated request costs hashing only.

LiteLLM takes seconds to import; it is loaded on the first count, in a worker thread, or
ahead of time by `warm_up_in_background()`.
"""

from __future__ import annotations

import gc
import hashlib
import os
import threading
from collections import OrderedDict
from functools import lru_cache
from typing import Any

import orjson
import structlog

log = structlog.get_logger("oas.tokens")

# LiteLLM's tokenizer kinds that are files inside its wheel (None: tiktoken's encodings,
# which LiteLLM also ships). Any other kind (llama, cohere) means a download from a hub.
_BUNDLED_KINDS = frozenset({None, "anthropic", "deepseek"})

_import_lock = threading.Lock()
_litellm: Any = None


def litellm_module() -> Any:
    """LiteLLM, imported once, offline: local cost map, no tokenizer downloads.

    Its import adds some 330,000 long-lived objects, which made every full garbage
    collection (and so, now and then, any request in the process) pause 200-550 ms
    instead of ~60 ms on this machine; they are moved out of the collector's sight with
    `gc.freeze()` right after the import, which brings those pauses under 1 ms.
    """
    global _litellm
    if _litellm is None:
        with _import_lock:
            if _litellm is None:
                os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
                from src.services.upstream.litellm_backend import _load_litellm

                module = _load_litellm()
                gc.freeze()
                _litellm = module
    return _litellm


@lru_cache(maxsize=256)
def tokenizer_args(model: str) -> dict[str, Any]:
    """The `token_counter` arguments that pick `model`'s tokenizer without a download."""
    litellm = litellm_module()
    from litellm import utils

    kind_of = getattr(utils, "huggingface_tokenizer_kind", None)
    if kind_of is not None:
        bundled = kind_of(model) in _BUNDLED_KINDS
    else:  # older LiteLLM: the names it downloads tokenizers for
        lowered = model.lower()
        bundled = not any(k in lowered for k in ("llama-2", "llama-3", "replicate", "command-r"))
    if bundled:
        return {"model": model}
    openai_tokenizer = getattr(utils, "_return_openai_tokenizer", None)
    tokenizer = (
        openai_tokenizer(model)
        if openai_tokenizer is not None
        else {"type": "openai_tokenizer", "tokenizer": litellm.encoding}
    )
    return {"model": model, "custom_tokenizer": tokenizer}


class CountCache:
    """A bounded LRU map from (model, content hash) to a token count, safe across threads."""

    def __init__(self, max_entries: int = 65_536) -> None:
        self.max_entries = max_entries
        self._data: OrderedDict[tuple[str, bytes], int] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: tuple[str, bytes]) -> int | None:
        with self._lock:
            value = self._data.get(key)
            if value is None:
                self.misses += 1
                return None
            self._data.move_to_end(key)
            self.hits += 1
            return value

    def put(self, key: tuple[str, bytes], value: int) -> None:
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self.max_entries:
                self._data.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()
            self.hits = self.misses = 0

    def __len__(self) -> int:
        return len(self._data)


cache = CountCache()


def _digest(*parts: Any) -> bytes:
    h = hashlib.blake2b(digest_size=16)
    for part in parts:
        h.update(orjson.dumps(part, default=str))
        h.update(b"\x00")
    return h.digest()


def _message_tokens(args: dict[str, Any], message: dict[str, Any]) -> int:
    litellm = litellm_module()
    try:
        return int(litellm.token_counter(**args, messages=[message], count_response_tokens=True))
    except Exception as exc:
        log.info("token counter fell back to text", error=type(exc).__name__)
        return int(litellm.token_counter(**args, text=orjson.dumps(message, default=str).decode()))


def _tools_tokens(
    args: dict[str, Any], tools: list[dict[str, Any]] | None, tool_choice: Any, has_system: bool
) -> int:
    """LiteLLM's part for tools, tool choice and the reply primer (it depends on whether
    a system message exists, so that is part of the key)."""
    litellm = litellm_module()
    probe = [{"role": "system", "content": ""}] if has_system else []
    with_tools = litellm.token_counter(
        **args, messages=probe, tools=tools or None, tool_choice=tool_choice
    )
    probe_only = litellm.token_counter(**args, messages=probe, count_response_tokens=True)
    return int(with_tools) - int(probe_only)


def count_openai_tokens(
    model: str,
    messages: list[dict[str, Any]],
    tools: list[dict[str, Any]] | None = None,
    tool_choice: Any = None,
) -> tuple[int, int, int]:
    """Tokens of an OpenAI-style prompt for `model`: (tokens, parts, parts from the cache).

    Equal to `litellm.token_counter(messages=..., tools=..., tool_choice=...)` with the same
    tokenizer, computed part by part so repeated parts cost a hash and a lookup.
    """
    args = tokenizer_args(model)
    total = reused = 0
    for message in messages:
        key = (model, _digest(message))
        count = cache.get(key)
        if count is None:
            count = _message_tokens(args, message)
            cache.put(key, count)
        else:
            reused += 1
        total += count
    has_system = any(m.get("role") == "system" for m in messages)
    key = (model, _digest("tools", tools, tool_choice, has_system))
    count = cache.get(key)
    if count is None:
        count = _tools_tokens(args, tools, tool_choice, has_system)
        cache.put(key, count)
    else:
        reused += 1
    return total + count, len(messages) + 1, reused


def warm_up(*models: str) -> None:
    """Import LiteLLM and load each model's tokenizer now, so the first count is fast."""
    for model in dict.fromkeys(models):
        try:
            count_openai_tokens(model, [{"role": "user", "content": "warm up"}])
        except Exception as exc:
            log.warning("token counter warm-up failed", model=model, error=type(exc).__name__)


_warm_up_thread: threading.Thread | None = None
_warm_up_lock = threading.Lock()  # not the import lock: that one is held for seconds


def warm_up_in_background(*models: str) -> threading.Thread:
    """Warm up on a daemon thread, once per process (about 5 s of CPU: start it while the
    process is idle). Claude Code counts tokens from its first seconds and gives up on a
    count that takes as long as LiteLLM's import."""
    global _warm_up_thread
    with _warm_up_lock:
        if _warm_up_thread is None:
            _warm_up_thread = threading.Thread(
                target=warm_up, args=models, daemon=True, name="oas-tokenizer-warm-up"
            )
            _warm_up_thread.start()
        return _warm_up_thread
