"""The benchmark's upstream: an OpenAI-compatible server as lean as a server can be.

    python -m bench.upstream --port 9000 --chunks 200 --chunk-size 16 --delay 0.001

It answers `POST .../chat/completions` the way OpenRouter streams a coding answer (a
processing comment, a role chunk, `--chunks` content deltas of `--chunk-size` characters
`--delay` seconds apart, a finish chunk, a usage chunk, `[DONE]`), or as one JSON body when
`stream` is false, and `GET .../models`. A request may ask for its own shape with the
model name `bench/cN` (N content chunks) or `bench/cNdM` (N chunks M ms apart), which
`oas` passes through as it is.

Why not the test suite's scripted upstream: that one is built for scripting and recording
(Starlette, a reply queue); here the upstream is the floor every figure is measured
against, so it must cost as little as possible and run in a process of its own, where its
CPU is never counted as `oas`'s. Every chunk is rendered once, at start.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from dataclasses import dataclass

import orjson

WORDS = [
    "def",
    "return",
    "value",
    "the",
    "file",
    "path",
    "import",
    "self",
    "result",
    "for",
    "in",
    "if",
    "not",
    "None",
]


@dataclass(frozen=True)
class Shape:
    """What one streamed answer looks like."""

    chunks: int = 200
    chunk_size: int = 16
    delay: float = 0.001
    #: each content chunk's text starts with `@<send time in µs>`, written as it is sent
    stamped: bool = False


def _text(n: int, start: int = 0) -> str:
    out: list[str] = []
    size = 0
    i = start
    while size < n:
        word = WORDS[i % len(WORDS)] + " "
        out.append(word)
        size += len(word)
        i += 1
    return "".join(out)[:n]


def _sse(data: dict) -> bytes:
    return b"data: " + orjson.dumps(data) + b"\n\n"


def _http_chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


#: what `stamp` replaces in a rendered piece: the text's start, as wide as a stamp
_STAMP_SLOT = b"@" + b"0" * 16


def stamp(piece: bytes) -> bytes:
    """The piece with its slot filled with the time now, in µs since the epoch (16 digits),
    so that its length, and the HTTP chunk size before it, stay the same."""
    return piece.replace(_STAMP_SLOT, b"@%016d" % (time.time_ns() // 1000), 1)


class Renderer:
    """Pre-rendered bytes per shape, so a request costs a lookup and some writes."""

    def __init__(self) -> None:
        self._streams: dict[Shape, tuple[bytes, list[bytes], bytes]] = {}
        self._bodies: dict[Shape, bytes] = {}

    def _usage(self, shape: Shape) -> dict:
        completion = max(1, shape.chunks * shape.chunk_size // 4)
        return {
            "prompt_tokens": 120,
            "completion_tokens": completion,
            "total_tokens": 120 + completion,
            "cost": 0.0001,
            "prompt_tokens_details": {"cached_tokens": 0},
        }

    def stream(self, shape: Shape) -> tuple[bytes, list[bytes], bytes]:
        """(head, one piece per content chunk, tail), each already an HTTP chunk."""
        if shape not in self._streams:
            base = {
                "id": "gen-bench",
                "object": "chat.completion.chunk",
                "created": int(time.time()),
                "model": "bench/model",
                "provider": "Bench",
            }

            def chunk(delta: dict, finish: str | None = None) -> bytes:
                return _sse(
                    {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
                )

            head = _http_chunk(
                b": OPENROUTER PROCESSING\n\n" + chunk({"role": "assistant", "content": ""})
            )
            # each piece differs from the last (LiteLLM ends a stream that repeats itself)
            slot = _STAMP_SLOT.decode() if shape.stamped else ""
            body = [
                _http_chunk(
                    chunk(
                        {"role": "assistant", "content": f"{slot}{i} " + _text(shape.chunk_size, i)}
                    )
                )
                for i in range(shape.chunks)
            ]
            tail = (
                _http_chunk(
                    chunk({}, "stop")
                    + _sse({**base, "choices": [], "usage": self._usage(shape)})
                    + b"data: [DONE]\n\n"
                )
                + b"0\r\n\r\n"
            )
            self._streams[shape] = (head, body, tail)
        return self._streams[shape]

    def body(self, shape: Shape) -> bytes:
        """The same answer as one chat completion."""
        if shape not in self._bodies:
            self._bodies[shape] = orjson.dumps(
                {
                    "id": "gen-bench",
                    "object": "chat.completion",
                    "created": int(time.time()),
                    "model": "bench/model",
                    "provider": "Bench",
                    "choices": [
                        {
                            "index": 0,
                            "finish_reason": "stop",
                            "message": {
                                "role": "assistant",
                                "content": _text(shape.chunks * shape.chunk_size),
                            },
                        }
                    ],
                    "usage": self._usage(shape),
                }
            )
        return self._bodies[shape]


MODELS = orjson.dumps(
    {"data": [{"id": "bench/model", "name": "Bench model", "context_length": 200000}]}
)


class BenchUpstream:
    """One asyncio server; HTTP/1.1 with keep-alive, nothing more."""

    def __init__(self, default: Shape) -> None:
        self.default = default
        self.render = Renderer()

    def _shape(self, model: object) -> Shape:
        """`bench/cN`: N chunks; `bench/cNdM`: N chunks M ms apart; else the default. A
        trailing `s` (`bench/c100d0s`) stamps each chunk with its send time."""
        if not isinstance(model, str) or not model.startswith("bench/c"):
            return self.default
        spec = model[7:]
        stamped = spec.endswith("s")
        chunks, _, delay = spec.removesuffix("s").partition("d")
        if not chunks.isdigit() or (delay and not delay.isdigit()):
            return self.default
        return Shape(
            int(chunks),
            self.default.chunk_size,
            int(delay) / 1000 if delay else self.default.delay,
            stamped,
        )

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                lines = head.split(b"\r\n")
                method, path, _ = lines[0].split(b" ", 2)
                headers = {}
                for line in lines[1:]:
                    if b":" in line:
                        name, value = line.split(b":", 1)
                        headers[name.strip().lower()] = value.strip()
                length = int(headers.get(b"content-length", 0))
                body = await reader.readexactly(length) if length else b""
                if path.split(b"?")[0].endswith(b"/models"):
                    self._send(writer, b"application/json", MODELS)
                elif method == b"POST" and path.split(b"?")[0].endswith(b"/chat/completions"):
                    await self._completion(writer, orjson.loads(body))
                else:
                    writer.write(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n")
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, RuntimeError):
            pass  # the client went away (uvloop raises RuntimeError on a closed transport)
        finally:
            writer.close()

    @staticmethod
    def _send(writer: asyncio.StreamWriter, kind: bytes, data: bytes) -> None:
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: %s\r\ncontent-length: %d\r\n\r\n%s"
            % (kind, len(data), data)
        )

    async def _completion(self, writer: asyncio.StreamWriter, body: dict) -> None:
        shape = self._shape(body.get("model"))
        if not body.get("stream"):
            self._send(writer, b"application/json", self.render.body(shape))
            return
        head, pieces, tail = self.render.stream(shape)
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
            b"cache-control: no-cache\r\ntransfer-encoding: chunked\r\n\r\n" + head
        )
        await writer.drain()
        for piece in pieces:
            if shape.stamped:  # the send time, taken as the piece is written
                piece = stamp(piece)
            writer.write(piece)
            if shape.delay:
                await writer.drain()
                await asyncio.sleep(shape.delay)
        writer.write(tail)


async def serve(host: str, port: int, default: Shape) -> None:
    upstream = BenchUpstream(default)
    server = await asyncio.start_server(upstream.handle, host, port, backlog=1024)
    print(f"bench upstream on http://{host}:{port}", flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--chunks", type=int, default=Shape.chunks)
    parser.add_argument("--chunk-size", type=int, default=Shape.chunk_size)
    parser.add_argument("--delay", type=float, default=Shape.delay)
    args = parser.parse_args()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(serve(args.host, args.port, Shape(args.chunks, args.chunk_size, args.delay)))


if __name__ == "__main__":
    main()
