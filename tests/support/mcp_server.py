"""A small MCP server for tests, written with the SDK's FastMCP.

    python -m tests.support.mcp_server stdio
    python -m tests.support.mcp_server http PORT      # Streamable HTTP at /mcp
    python -m tests.support.mcp_server sse PORT       # SSE at /sse

Tools: `add`, `echo`, `fail` (raises), `whoami` (a digest of the Authorization header it received,
so tests can see a request's `authorization_token` arrive), `image` (non-text content),
`pid` (its process id, to tell a restarted stdio server from the first one) and `exit`
(the process dies, to test restarts).
"""

from __future__ import annotations

import hashlib
import os
import sys

from mcp.server.fastmcp import Context, FastMCP
from mcp.types import ImageContent

server = FastMCP("oas-test", host="127.0.0.1")


@server.tool()
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@server.tool()
def echo(text: str) -> str:
    """Return the text unchanged."""
    return text


@server.tool()
def fail(reason: str = "on purpose") -> str:
    """Always fails."""
    raise RuntimeError(f"failed {reason}")


@server.tool()
def whoami(ctx: Context) -> str:
    """A digest of the Authorization header of the HTTP request that carried this call
    (a digest, so that tests can look for the token itself in logs)."""
    request = ctx.request_context.request
    header = request.headers.get("authorization") if request is not None else None
    return authorization_digest(header) if header else "anonymous"


def authorization_digest(header: str) -> str:
    return "sha256:" + hashlib.sha256(header.encode()).hexdigest()[:16]


@server.tool()
def image() -> ImageContent:
    """A 1x1 PNG."""
    return ImageContent(
        type="image",
        mimeType="image/png",
        data="iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==",
    )


@server.tool()
def pid() -> int:
    """This server's process id."""
    return os.getpid()


@server.tool(name="exit")
def exit_now() -> str:
    """End the server process at once."""
    os._exit(3)


def main(argv: list[str]) -> None:
    mode = argv[0] if argv else "stdio"
    if mode == "stdio":
        server.run("stdio")
        return
    server.settings.port = int(argv[1])
    server.settings.log_level = "WARNING"
    server.run("streamable-http" if mode == "http" else "sse")


if __name__ == "__main__":
    main(sys.argv[1:])
