"""Chunks that arrive together leave together: what one upstream read brought reaches the
client in one HTTP chunk (one write), `message_start` included, and nothing is held back.

Read with a raw HTTP/1.1 client, because the chunked transfer encoding keeps the frames
`oas` wrote whatever TCP does with them.
"""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

import orjson

from tests.support.upstream import Reply

MODEL = "anthropic/claude-sonnet-4"


def chunk(content: str, finish: str | None = None) -> bytes:
    data = {
        "id": "gen-1",
        "object": "chat.completion.chunk",
        "model": MODEL,
        "choices": [{"index": 0, "delta": {"content": content}, "finish_reason": finish}],
    }
    return b"data: " + orjson.dumps(data) + b"\n\n"


def frames(url: str, body: dict) -> list[bytes]:
    """POST /v1/messages; the response body's HTTP chunks, as `oas` wrote them."""
    parts = urlsplit(url)
    payload = orjson.dumps(body)
    request = (
        f"POST /v1/messages HTTP/1.1\r\nhost: {parts.netloc}\r\n"
        "content-type: application/json\r\nx-api-key: client-key\r\n"
        "anthropic-version: 2023-06-01\r\nconnection: close\r\n"
        f"content-length: {len(payload)}\r\n\r\n"
    ).encode() + payload
    with socket.create_connection((parts.hostname, parts.port), timeout=30) as sock:
        sock.sendall(request)
        raw = b""
        while data := sock.recv(65536):
            raw += data
    head, _, rest = raw.partition(b"\r\n\r\n")
    assert b" 200 " in head.split(b"\r\n")[0] and b"chunked" in head.lower(), head
    out = []
    while rest:
        size, _, rest = rest.partition(b"\r\n")
        n = int(size, 16)
        if n == 0:
            break
        out.append(rest[:n])
        rest = rest[n + 2 :]
    return out


def test_chunks_read_together_are_written_together_with_message_start(oas, upstream):
    words = ["Hello", " there", ",", " friend", "!"]
    upstream.queue(
        Reply(raw_body=b"".join(chunk(w) for w in words) + chunk("", "stop") + b"data: [DONE]\n\n")
    )

    written = frames(
        oas.url,
        {
            "model": "big",
            "max_tokens": 20,
            "stream": True,
            "messages": [{"role": "user", "content": "hi"}],
        },
    )

    first = written[0]
    assert b"event: message_start" in first
    for word in words:  # every delta of that read is in the same write as message_start
        assert orjson.dumps(word) in first
    whole = b"".join(written)
    assert whole.count(b"event: content_block_delta") == len(words)
    assert whole.rstrip().endswith(b'data: {"type":"message_stop"}')


def test_a_paced_stream_leaves_one_write_per_upstream_read(oas, upstream):
    # chunks 0.2 s apart arrive in reads of their own: each leaves at once, alone, in its
    # own HTTP chunk (nothing waits for the next one), and nothing is split or merged
    upstream.queue(Reply(text="abcdefghijkl", chunk_size=4, delay=0.2))

    written = frames(
        oas.url,
        {
            "model": "big",
            "max_tokens": 20,
            "stream": True,
            "messages": [{"role": "user", "content": "hi"}],
        },
    )

    deltas = [w for w in written if b'"text_delta"' in w]
    assert [w.count(b"event: content_block_delta") for w in deltas] == [1, 1, 1]
    for frame, text in zip(deltas, (b'"abcd"', b'"efgh"', b'"ijkl"'), strict=True):
        assert text in frame
    assert all(w.endswith(b"\n\n") for w in written)  # whole events only
