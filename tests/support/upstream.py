"""A scripted OpenAI-compatible upstream that answers the way OpenRouter does.

Tests queue `Reply`s; each chat completion request takes the next one (or the default
echo) and is recorded in `requests`, so a test can assert what `oas` sent. Streams come
as OpenRouter sends them: a role chunk, content / reasoning / tool-call deltas (tool
arguments split across chunks), a `finish_reason` chunk, then a usage chunk and `[DONE]`.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from itertools import zip_longest
from typing import Any

import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

#: an answer's usage as OpenRouter reports it, with its cost (USD)
COSTED_USAGE = {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15, "cost": 0.0125}


@dataclass
class ToolCall:
    name: str
    arguments: str | dict[str, Any]
    id: str | None = None
    no_id: bool = False  # send the call without an id (some providers do)
    chunks: list[str] | None = None  # stream the arguments in exactly these pieces


@dataclass
class Reply:
    """One scripted answer. For streams, `text` is cut into `chunk_size`-character deltas."""

    text: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    reasoning: str = ""
    reasoning_details: list[dict[str, Any]] = field(default_factory=list)
    finish_reason: str | None = None
    native_finish_reason: str | None = None
    usage: dict[str, Any] | None = None
    status: int = 200
    error: dict[str, Any] | None = None  # OpenRouter error body for status >= 400
    headers: dict[str, str] = field(default_factory=dict)
    chunk_size: int = 4
    delay: float = 0.0  # seconds between stream chunks
    first_byte_delay: float = 0.0
    mid_stream_error: dict[str, Any] | None = None  # sent after half the text
    malformed_chunk: bool = False
    stall: float = 0.0  # seconds to stall after the first content chunk
    drop_connection: bool = False  # close the socket mid-stream
    raw_body: bytes | None = None  # send these bytes as they are (stream or not)
    content_type: str | None = None  # of `raw_body` (default: what the request asked for)
    no_finish_reason: bool = False  # stream: no chunk carries a finish_reason
    no_done: bool = False  # stream: the body ends without `data: [DONE]`
    # Stream: how tool calls are sent. "sequential" (OpenAI), "interleaved" (fragments
    # of all calls alternate), "whole" (each call complete in one chunk), "same_index"
    # (every call at index 0, told apart by its id).
    tool_call_style: str = "sequential"
    choice_extra: dict[str, Any] = field(default_factory=dict)  # more fields on the final choice
    refusal: str = ""  # OpenAI's `refusal` text
    annotations: list[dict[str, Any]] = field(default_factory=list)  # url_citation (web search)
    write_size: int = 0  # stream: cut the body into writes of this many bytes (splits UTF-8)
    split_pause: float = 0.0  # seconds to wait after a write that ends inside a character


def _usage(
    body: dict[str, Any], reply: Reply, prompt_tokens: Callable[[dict[str, Any]], int] | None = None
) -> dict[str, Any]:
    if reply.usage is not None:
        return reply.usage
    if prompt_tokens is not None:
        prompt = prompt_tokens(body)
    else:
        prompt = len(orjson.dumps(body.get("messages", []))) // 4
    completion = max(1, (len(reply.text) + len(reply.reasoning)) // 4 + 8 * len(reply.tool_calls))
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "cost": 0.00001 * (prompt + completion),
    }


def litellm_prompt_tokens(body: dict[str, Any]) -> int:
    """The prompt tokens of a chat completion body, as LiteLLM counts them for its model
    (with the tokenizer `oas` picks for that model: one that ships inside a package)."""
    from src.services.tokenizer import litellm_module, tokenizer_args

    return int(
        litellm_module().token_counter(
            **tokenizer_args(str(body.get("model"))),
            messages=body.get("messages", []),
            tools=body.get("tools"),
            tool_choice=body.get("tool_choice"),
        )
    )


def _arguments(call: ToolCall) -> str:
    return (
        call.arguments if isinstance(call.arguments, str) else orjson.dumps(call.arguments).decode()
    )


class ScriptedUpstream:
    """Start with `start()`; `base_url` is what `OPENROUTER_BASE_URL` should be."""

    def __init__(self) -> None:
        self.replies: deque[Reply | Callable[[dict[str, Any]], Reply]] = deque()
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.default: Callable[[dict[str, Any]], Reply] = self._echo
        self.disconnects = 0  # streams whose client went away before the end
        # How usage reports prompt tokens when a Reply does not say: None is ~4 bytes a
        # token; `litellm_prompt_tokens` counts them as a real tokenizer does.
        self.prompt_tokens: Callable[[dict[str, Any]], int] | None = None
        self.models_status = 200  # status of GET /models (>= 400: an OpenRouter error body)
        self.models_requests = 0
        self.split_characters = 0  # writes that ended inside a UTF-8 character
        self.models: list[dict[str, Any]] = [
            {
                "id": "anthropic/claude-sonnet-4",
                "name": "Anthropic: Claude Sonnet 4",
                "context_length": 200000,
                "created": 1747930371,
            },
            {
                "id": "openai/gpt-4o",
                "name": "OpenAI: GPT-4o",
                "context_length": 128000,
                "created": 1715558400,
            },
        ]
        self.port = 0
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @staticmethod
    def _echo(body: dict[str, Any]) -> Reply:
        last = body.get("messages", [{}])[-1].get("content")
        text = last if isinstance(last, str) else "ok"
        return Reply(text=f"echo: {text}")

    def queue(self, *replies: Reply | Callable[[dict[str, Any]], Reply]) -> None:
        self.replies.extend(replies)

    def reset(self) -> None:
        self.replies.clear()
        self.requests.clear()
        self.headers.clear()
        self.default = self._echo
        self.disconnects = 0
        self.prompt_tokens = None
        self.models_status = 200
        self.models_requests = 0
        self.split_characters = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/v1"

    # ---- the HTTP side -----------------------------------------------------------------

    async def _chat(self, request: Request) -> Response:
        body = orjson.loads(await request.body())
        self.requests.append(body)
        self.headers.append(dict(request.headers))
        script = self.replies.popleft() if self.replies else self.default
        reply = script if isinstance(script, Reply) else script(body)
        if reply.first_byte_delay:
            await asyncio.sleep(reply.first_byte_delay)
        if reply.status >= 400:
            error = reply.error or {
                "code": reply.status,
                "message": f"scripted error {reply.status}",
            }
            return Response(
                orjson.dumps({"error": error}),
                status_code=reply.status,
                media_type="application/json",
                headers=reply.headers,
            )
        if reply.raw_body is not None:
            kind = reply.content_type or (
                "text/event-stream" if body.get("stream") else "application/json"
            )
            return Response(reply.raw_body, media_type=kind)
        if body.get("stream"):
            return StreamingResponse(
                self._stream(body, reply), media_type="text/event-stream", headers=reply.headers
            )
        return Response(orjson.dumps(self._completion(body, reply)), media_type="application/json")

    def _completion(self, body: dict[str, Any], reply: Reply) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": reply.text or None}
        if reply.refusal:
            message["refusal"] = reply.refusal
        if reply.annotations:
            message["annotations"] = reply.annotations
        if reply.reasoning:
            message["reasoning"] = reply.reasoning
        if reply.reasoning_details:
            message["reasoning_details"] = reply.reasoning_details
        if reply.tool_calls:
            message["tool_calls"] = [
                {
                    **({} if c.no_id else {"id": c.id or f"call_{i}"}),
                    "type": "function",
                    "function": {"name": c.name, "arguments": _arguments(c)},
                }
                for i, c in enumerate(reply.tool_calls)
            ]
        finish = reply.finish_reason or ("tool_calls" if reply.tool_calls else "stop")
        choice: dict[str, Any] = {"index": 0, "message": message, "finish_reason": finish}
        if reply.native_finish_reason:
            choice["native_finish_reason"] = reply.native_finish_reason
        choice.update(reply.choice_extra)
        return {
            "id": "gen-scripted",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model"),
            "provider": "Scripted",
            "choices": [choice],
            "usage": _usage(body, reply, self.prompt_tokens),
        }

    def _chunk(
        self, body: dict[str, Any], delta: dict[str, Any], finish: str | None = None, **extra: Any
    ) -> bytes:
        choice: dict[str, Any] = {"index": 0, "delta": delta, "finish_reason": finish}
        choice.update(extra)
        data = {
            "id": "gen-scripted",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": body.get("model"),
            "provider": "Scripted",
            "choices": [choice],
        }
        return b"data: " + orjson.dumps(data) + b"\n\n"

    async def _stream(self, body: dict[str, Any], reply: Reply) -> AsyncIterator[bytes]:
        if not reply.write_size:
            async for data in self._events(body, reply):
                yield data
            return
        # Cut the body into small writes regardless of event boundaries, so that a
        # multi-byte character can arrive in two TCP reads.
        buffer = b""
        async for data in self._events(body, reply):
            buffer += data
            while len(buffer) > reply.write_size:
                piece, buffer = buffer[: reply.write_size], buffer[reply.write_size :]
                yield piece
                if (buffer[0] & 0xC0) == 0x80:  # the next byte continues a character
                    self.split_characters += 1
                    await asyncio.sleep(reply.split_pause)  # let this half go out on its own
        if buffer:
            yield buffer

    def _reasoning_chunks(self, body: dict[str, Any], reply: Reply) -> list[bytes]:
        """Reasoning as OpenRouter streams it: each piece both as `reasoning` text and as a
        `reasoning_details` entry with its index; a signature comes in a piece of its own."""
        size = max(1, reply.chunk_size)
        if not reply.reasoning_details:
            return [
                self._chunk(
                    body,
                    {
                        "role": "assistant",
                        "content": "",
                        "reasoning": reply.reasoning[i : i + size],
                    },
                )
                for i in range(0, len(reply.reasoning), size)
            ]
        out = []
        for index, detail in enumerate(reply.reasoning_details):
            kind = detail.get("type")
            meta = {k: v for k, v in detail.items() if k in ("format", "id")}
            if kind == "reasoning.text":
                text = detail.get("text") or ""
                for i in range(0, len(text), size):
                    piece = {"type": kind, "text": text[i : i + size], "index": index, **meta}
                    out.append(
                        self._chunk(
                            body,
                            {
                                "role": "assistant",
                                "content": "",
                                "reasoning": text[i : i + size],
                                "reasoning_details": [piece],
                            },
                        )
                    )
                if detail.get("signature"):
                    piece = {"type": kind, "signature": detail["signature"], "index": index, **meta}
                    out.append(
                        self._chunk(
                            body, {"role": "assistant", "content": "", "reasoning_details": [piece]}
                        )
                    )
            else:
                extra = {"reasoning": detail["summary"]} if kind == "reasoning.summary" else {}
                out.append(
                    self._chunk(
                        body,
                        {
                            "role": "assistant",
                            "content": "",
                            **extra,
                            "reasoning_details": [{**detail, "index": index}],
                        },
                    )
                )
        return out

    def _tool_chunks(self, body: dict[str, Any], reply: Reply) -> list[bytes]:
        size = max(1, reply.chunk_size * 2)
        per_call: list[list[dict[str, Any]]] = []
        for i, call in enumerate(reply.tool_calls):
            args = _arguments(call)
            index = 0 if reply.tool_call_style == "same_index" else i
            head: dict[str, Any] = {
                "index": index,
                "type": "function",
                "function": {"name": call.name, "arguments": ""},
            }
            if not call.no_id:
                head["id"] = call.id or f"call_{i}"
            if reply.tool_call_style == "whole":
                head["function"]["arguments"] = args
                per_call.append([head])
                continue
            pieces = (
                call.chunks
                if call.chunks is not None
                else [args[j : j + size] for j in range(0, len(args), size)]
            )
            per_call.append(
                [head] + [{"index": index, "function": {"arguments": p}} for p in pieces]
            )
        if reply.tool_call_style == "interleaved":
            order = [f for group in zip_longest(*per_call) for f in group if f is not None]
        else:
            order = [f for group in per_call for f in group]
        return [self._chunk(body, {"tool_calls": [fragment]}) for fragment in order]

    async def _events(self, body: dict[str, Any], reply: Reply) -> AsyncIterator[bytes]:
        finished = False
        try:
            yield b": OPENROUTER PROCESSING\n\n"
            yield self._chunk(body, {"role": "assistant", "content": ""})
            for data in self._reasoning_chunks(body, reply):
                yield data
                if reply.delay:
                    await asyncio.sleep(reply.delay)
            size = max(1, reply.chunk_size)
            if reply.refusal:
                yield self._chunk(body, {"role": "assistant", "refusal": reply.refusal})
            pieces = [reply.text[i : i + size] for i in range(0, len(reply.text), size)]
            for n, piece in enumerate(pieces):
                if reply.mid_stream_error and n == len(pieces) // 2:
                    yield (
                        b"data: "
                        + orjson.dumps(
                            {
                                "error": reply.mid_stream_error,
                                "choices": [
                                    {"index": 0, "delta": {"content": ""}, "finish_reason": "error"}
                                ],
                            }
                        )
                        + b"\n\n"
                    )
                    finished = True
                    return
                if reply.malformed_chunk and n == len(pieces) // 2:
                    yield b"data: {not json\n\n"
                if reply.drop_connection and n == len(pieces) // 2:
                    raise ConnectionResetError("scripted drop")
                yield self._chunk(body, {"role": "assistant", "content": piece})
                if n == 0 and reply.stall:
                    await asyncio.sleep(reply.stall)
                if reply.delay:
                    await asyncio.sleep(reply.delay)
            if reply.annotations:  # OpenRouter sends web search citations after the text
                yield self._chunk(
                    body, {"role": "assistant", "content": "", "annotations": reply.annotations}
                )
            for data in self._tool_chunks(body, reply):
                yield data
            finish = reply.finish_reason or ("tool_calls" if reply.tool_calls else "stop")
            extra = dict(reply.choice_extra)
            if reply.native_finish_reason:
                extra["native_finish_reason"] = reply.native_finish_reason
            if not reply.no_finish_reason:
                yield self._chunk(body, {}, finish, **extra)
            usage = {  # OpenRouter's usage chunk is a chunk like the others
                "id": "gen-scripted",
                "object": "chat.completion.chunk",
                "created": int(time.time()),
                "model": body.get("model"),
                "provider": "Scripted",
                "choices": [],
                "usage": _usage(body, reply, self.prompt_tokens),
            }
            yield b"data: " + orjson.dumps(usage) + b"\n\n"
            if not reply.no_done:
                yield b"data: [DONE]\n\n"
            finished = True
        finally:
            if not finished:
                self.disconnects += 1

    async def _models(self, request: Request) -> Response:
        self.models_requests += 1
        if self.models_status >= 400:
            return Response(
                orjson.dumps(
                    {"error": {"code": self.models_status, "message": "scripted models error"}}
                ),
                status_code=self.models_status,
                media_type="application/json",
            )
        return Response(orjson.dumps({"data": self.models}), media_type="application/json")

    # ---- lifecycle ---------------------------------------------------------------------

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/api/v1/chat/completions", self._chat, methods=["POST"]),
                Route("/api/v1/models", self._models, methods=["GET"]),
            ]
        )

    def start(self) -> ScriptedUpstream:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(self.app(), log_level="warning", access_log=False, lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run,
            kwargs={"sockets": [sock]},
            daemon=True,
            name="scripted-upstream",
        )
        self._thread.start()
        while not self._server.started:
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(5)
