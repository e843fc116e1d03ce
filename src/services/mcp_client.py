"""One connection to one MCP server, with the official `mcp` SDK, usable from any task.

The SDK's transports are anyio context managers that must be entered and left by the
same task. A request's flow, its stream and the managed-server supervisor are different
tasks, so each connection lives in a task of its own (`_serve`): it opens the transport
and the session, then waits to be told to close. Callers use the session's requests
(`list_tools`, `call_tool`, `send_ping`), which are safe from any task.

Transports: Streamable HTTP (a URL; the default), SSE (`transport: sse`, or a URL ending in
`/sse`) and stdio (a command). HTTP connections to servers a *request* named go through
`GuardedTransport`, so `mcp_servers` cannot reach private addresses either.

Secrets (`authorization_token`, header values, env values) are held in `ServerSpec` fields
that are kept out of its repr, and no log or error text here includes them.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import re
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TextIO
from urllib.parse import urlsplit

import httpx
import structlog

from src.services.netguard import AddressPolicy, GuardedTransport

if TYPE_CHECKING:
    from mcp import ClientSession
    from mcp.types import CallToolResult
    from mcp.types import Tool as McpTool

log = structlog.get_logger("oas.mcp")

Transport = Literal["streamable_http", "sse", "stdio"]
MAX_FUNCTION_NAME = 64  # OpenAI's limit for function names
MAX_TOOL_PAGES = 20


class McpUnavailable(Exception):
    """The server could not be reached, or stopped answering."""


@dataclass(frozen=True)
class ServerSpec:
    """How to reach one MCP server. `headers` and `env` may hold secrets: no repr."""

    name: str
    transport: Transport
    url: str | None = None
    command: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict, repr=False)
    cwd: str | None = None
    headers: dict[str, str] = field(default_factory=dict, repr=False)
    timeout: float = 30.0
    stderr_log: Path | None = None

    @property
    def where(self) -> str:
        """The server's address for logs and errors: no query string, no credentials."""
        if self.url:
            parts = urlsplit(self.url)
            port = f":{parts.port}" if parts.port else ""
            return f"{parts.scheme}://{parts.hostname or ''}{port}{parts.path}"
        command = " ".join(self.command)
        return command if len(command) <= 100 else command[:97] + "..."


def url_transport(url: str, transport: str | None = None) -> Transport:
    """`sse` when asked for, or when the URL ends in `/sse` (the usual SSE endpoint)."""
    if transport in ("sse", "streamable_http"):
        return transport  # type: ignore[return-value]
    return "sse" if urlsplit(url).path.rstrip("/").endswith("/sse") else "streamable_http"


_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


def function_name(server: str, tool: str) -> str:
    """`mcp__<server>__<tool>`, valid as an OpenAI function name (`[A-Za-z0-9_-]{1,64}`).

    When characters had to be replaced or the name cut to 64, a short hash of the real
    names is appended, so two tools never share a function name.
    """
    raw = f"mcp__{server}__{tool}"
    safe = _UNSAFE.sub("_", raw)
    if safe == raw and len(raw) <= MAX_FUNCTION_NAME:
        return raw
    digest = hashlib.sha1(f"{server}\0{tool}".encode()).hexdigest()[:8]
    return f"{safe[: MAX_FUNCTION_NAME - 9]}_{digest}"


def function_for(server: str, tool: McpTool) -> dict[str, Any]:
    """The OpenAI function that offers one MCP tool to the model."""
    schema = dict(tool.inputSchema or {})
    if schema.get("type") != "object":
        schema = {"type": "object", "properties": {}}
    schema.setdefault("properties", {})
    description = (tool.description or tool.title or tool.name).strip()
    return {
        "type": "function",
        "function": {
            "name": function_name(server, tool.name),
            "description": f"[MCP server {server}] {description}"[:1024],
            "parameters": schema,
        },
    }


def result_content(result: CallToolResult) -> tuple[list[dict[str, Any]], str]:
    """An MCP tool result as Anthropic text blocks and as the text the model reads.

    Anthropic's `mcp_tool_result` holds text blocks only, so images, audio and binary
    resources are described rather than inlined.
    """
    from mcp.types import AudioContent, EmbeddedResource, ImageContent, ResourceLink, TextContent

    texts: list[str] = []
    for item in result.content:
        if isinstance(item, TextContent):
            texts.append(item.text)
        elif isinstance(item, ImageContent | AudioContent):
            size = len(item.data) * 3 // 4
            texts.append(f"[{item.type} {item.mimeType}, about {size} bytes, not shown]")
        elif isinstance(item, EmbeddedResource):
            resource = item.resource
            text = getattr(resource, "text", None)
            texts.append(text if text is not None else f"[binary resource {resource.uri}]")
        elif isinstance(item, ResourceLink):
            texts.append(f"[resource {item.name}: {item.uri}]")
    if not texts and result.structuredContent is not None:
        import orjson

        texts.append(orjson.dumps(result.structuredContent).decode())
    blocks = [{"type": "text", "text": t} for t in texts]
    return blocks, "\n\n".join(texts)


class McpConnection:
    """An open session with one server; `open()`, then `list_tools`/`call_tool`, `aclose()`."""

    def __init__(self, spec: ServerSpec, policy: AddressPolicy | None = None) -> None:
        self.spec = spec
        self.policy = policy  # None: trusted (operator-configured), no address check
        self.error: str | None = None
        self._session: ClientSession | None = None
        self._ready = asyncio.Event()
        self._closing = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def alive(self) -> bool:
        return self._session is not None and self._task is not None and not self._task.done()

    async def open(self) -> None:
        """Connect and initialise within the spec's timeout (raises `McpUnavailable`)."""
        self._task = asyncio.create_task(self._serve(), name=f"mcp:{self.spec.name}")
        try:
            await asyncio.wait_for(self._ready.wait(), self.spec.timeout)
        except TimeoutError:
            await self.aclose()
            raise McpUnavailable(
                f"no answer from {self.spec.where} within {self.spec.timeout:g}s"
            ) from None
        if self._session is None:
            await self.aclose()
            raise McpUnavailable(self.error or f"could not connect to {self.spec.where}")

    def _http_client(
        self,
        headers: dict[str, str] | None = None,
        timeout: Any = None,
        auth: httpx.Auth | None = None,
    ) -> httpx.AsyncClient:
        """The SDK's client factory: ours adds the address guard for request-level servers."""
        transport: httpx.AsyncBaseTransport = httpx.AsyncHTTPTransport(trust_env=False)
        if self.policy is not None:
            transport = GuardedTransport(self.policy, transport)
        return httpx.AsyncClient(
            transport=transport,
            headers={**self.spec.headers, **(headers or {})},
            timeout=timeout or httpx.Timeout(self.spec.timeout, read=max(self.spec.timeout, 300)),
            auth=auth,
            follow_redirects=True,
            trust_env=False,
        )

    @contextlib.asynccontextmanager
    async def _streams(self, stack: contextlib.AsyncExitStack) -> Any:
        spec = self.spec
        if spec.transport == "stdio":
            from mcp.client.stdio import StdioServerParameters, stdio_client

            errlog: TextIO = stack.enter_context(_stderr_sink(spec.stderr_log))
            params = StdioServerParameters(
                command=spec.command[0],
                args=list(spec.command[1:]),
                env=_child_env(spec.env),
                cwd=spec.cwd,
            )
            async with stdio_client(params, errlog=errlog) as (read, write):
                yield read, write
        elif spec.transport == "sse":
            from mcp.client.sse import sse_client

            async with sse_client(
                spec.url or "", timeout=spec.timeout, httpx_client_factory=self._http_client
            ) as (read, write):
                yield read, write
        else:
            from mcp.client.streamable_http import streamable_http_client

            client = await stack.enter_async_context(self._http_client())
            async with streamable_http_client(spec.url or "", http_client=client) as (
                read,
                write,
                _,
            ):
                yield read, write

    async def _serve(self) -> None:
        from mcp import ClientSession

        try:
            async with contextlib.AsyncExitStack() as stack:
                read, write = await stack.enter_async_context(self._streams(stack))
                session = await stack.enter_async_context(
                    ClientSession(
                        read, write, read_timeout_seconds=timedelta(seconds=self.spec.timeout)
                    )
                )
                await session.initialize()
                self._session = session
                self._ready.set()
                await self._closing.wait()
        except BaseException as exc:
            if not self._closing.is_set():
                self.error = _describe(exc, self.spec)
                log.warning(
                    "MCP connection ended",
                    server=self.spec.name,
                    where=self.spec.where,
                    error=self.error,
                )
        finally:
            self._session = None
            self._ready.set()

    def session(self) -> ClientSession:
        if self._session is None:
            raise McpUnavailable(self.error or f"not connected to {self.spec.where}")
        return self._session

    async def list_tools(self) -> list[McpTool]:
        """Every tool the server offers (following pagination, bounded)."""
        tools: list[McpTool] = []
        cursor: str | None = None
        for _ in range(MAX_TOOL_PAGES):
            result = await self._bounded(self.session().list_tools(cursor))
            tools.extend(result.tools)
            cursor = result.nextCursor
            if not cursor:
                break
        return tools

    async def call_tool(self, name: str, arguments: dict[str, Any]) -> CallToolResult:
        return await self._bounded(self.session().call_tool(name, arguments))

    async def ping(self) -> None:
        await self._bounded(self.session().send_ping())

    async def _bounded(self, call: Any) -> Any:
        try:
            return await asyncio.wait_for(call, self.spec.timeout)
        except TimeoutError:
            raise McpUnavailable(
                f"{self.spec.name} did not answer within {self.spec.timeout:g}s"
            ) from None

    async def aclose(self) -> None:
        """Close the session and transport (a stdio server's process is stopped)."""
        self._closing.set()
        task, self._task = self._task, None
        if task is None:
            return
        try:
            await asyncio.wait_for(asyncio.shield(task), 10.0)
        except (TimeoutError, asyncio.CancelledError):
            task.cancel()
            with contextlib.suppress(BaseException):
                await task


def _child_env(extra: dict[str, str]) -> dict[str, str]:
    """A stdio server's environment: no secret of oas, but what its configuration names
    for it (its own token, say)."""
    from src.core.child_env import child_env

    return child_env(extra, allow_secrets=True)


@contextlib.contextmanager
def _stderr_sink(path: Path | None) -> Any:
    """Where a stdio server's stderr goes: its log file, or nowhere."""
    import os

    if path is None:
        with open(os.devnull, "w") as sink:
            yield sink
        return
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with open(fd, "a", encoding="utf-8") as sink:
        yield sink


def _describe(exc: BaseException, spec: ServerSpec) -> str:
    """A short, secret-free reason (exception groups are unwrapped to their first leaf)."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    if isinstance(exc, httpx.HTTPStatusError):
        return f"{spec.where} answered HTTP {exc.response.status_code}"
    text = str(exc)
    for secret in (*spec.headers.values(), *spec.env.values()):
        if secret and len(secret) >= 4:
            text = text.replace(secret, "[redacted]")
    return f"{type(exc).__name__}: {text}"[:300] if text else type(exc).__name__
