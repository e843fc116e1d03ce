"""The floor of `oas`'s own stack: a bare relay on uvicorn (uvloop, httptools) and aiohttp.

It forwards each request to the bench upstream and writes the answer's bytes on as they
come, with nothing between: no conversion, no flow, no tracking. Its CPU per paced chunk
is what one network read and one write cost a Python process on this machine, so the
bench can tell what `oas` adds per chunk from what the stack it runs on costs anyway.

    python -m bench.relay --port 8090 --upstream http://127.0.0.1:8091/api/v1
"""

from __future__ import annotations

import argparse
from typing import Any

import aiohttp
import uvicorn


def app_for(upstream: str) -> Any:
    """An ASGI app that relays `POST` bodies to `upstream`'s chat completions."""
    url = f"{upstream}/chat/completions"
    sessions: list[aiohttp.ClientSession] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        if scope["path"] == "/health":  # for the bench to know it is up
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"ok"})
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        if not sessions:
            sessions.append(aiohttp.ClientSession())
        headers = {"content-type": "application/json"}
        async with sessions[0].post(url, data=body, headers=headers) as response:
            kind = response.headers.get("content-type", "application/json").encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": response.status,
                    "headers": [(b"content-type", kind)],
                }
            )
            async for data in response.content.iter_any():
                await send({"type": "http.response.body", "body": data, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True, help="the upstream's base URL")
    args = parser.parse_args()
    uvicorn.run(
        app_for(args.upstream),
        host="127.0.0.1",
        port=args.port,
        loop="uvloop",
        http="httptools",
        lifespan="off",
        log_level="warning",
    )


if __name__ == "__main__":
    main()
