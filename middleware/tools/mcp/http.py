"""An upstream MCP server over streamable HTTP.

One initialized session per credential (the token the gateway injects, ``None`` for a server without
one) is kept open and reused by every call with that token, so a call costs one POST, not a handshake.
Sessions are ``wire.WireSession`` (the handshake revisions, spoken on the gateway's aiohttp with the
SDK's types: the cheap path); a server that refuses the handshake gets the official SDK's ``Client``
instead (``_Session``: its ``auto`` mode negotiates the stateless 2026-07-28 revision), from then on.
A session that fails (the server restarted, the session expired, the connection broke) is dropped and
the request is sent once more on a new one. The credential travels only as ``server.header:
server.format.format(value=token)``; the client's own key never reaches the upstream (the HTTP clients
are the gateway's, with no other headers). Sessions past ``max_sessions`` close oldest first.

The SDK client of a ``_Session`` lives in a task of its own (its task group must open and close in one
task); calls are made from the requests' tasks over the session's streams.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol, TypeVar

import aiohttp
import anyio
import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from mcp_types import CONNECTION_CLOSED, INVALID_REQUEST, CallToolResult, ListToolsResult, Tool

from executors.spec import Grants
from gateway.kernel.config.sections.mcp import McpServer
from gateway.kernel.context import RequestContext
from gateway.kernel.mcp import UpstreamResult, UpstreamTool
from middleware.tools.mcp.wire import SessionLost, WireSession, WireUnsupported

T = TypeVar("T")
MAX_PAGES = 50  # tools/list pages followed before giving up (a paginator that never ends)
DRAIN_S, DRAIN_BYTES = 0.05, 65_536  # what is read of an SDK reply's rest when it is closed early


class UpstreamFailure(Exception):
    """The upstream could not be reached or did not answer in time; the message names no credential."""


class Conn(Protocol):
    """What a call needs of a session, whichever client holds it."""

    async def list_page(self, cursor: str | None) -> ListToolsResult: ...

    async def call(self, tool: str, arguments: dict[str, Any], timeout_s: float) -> CallToolResult: ...

    async def close(self) -> None: ...


class HttpUpstream:
    def __init__(self, server: McpServer, *, max_sessions: int = 256) -> None:
        assert server.url is not None, "an HTTP upstream needs a url"
        self._server = server
        self._url = server.url
        self._max = max_sessions
        self._sessions: OrderedDict[str | None, Conn] = OrderedDict()
        self._http: aiohttp.ClientSession | None = None
        self._handshake = True  # until the server refuses it: then the SDK's client

    @property
    def name(self) -> str:
        return self._server.name

    async def list_tools(self, ctx: RequestContext, token: str | None, deadline: float) -> list[UpstreamTool]:
        async def listing(conn: Conn) -> list[UpstreamTool]:
            tools: list[UpstreamTool] = []
            cursor: str | None = None
            for _ in range(MAX_PAGES):
                page = await conn.list_page(cursor)
                tools += [self._tool(t) for t in page.tools]
                cursor = page.next_cursor
                if cursor is None:
                    break
            return tools

        return await self._with_session(token, deadline, listing)

    async def call_tool(
        self, ctx: RequestContext, tool: str, arguments: Mapping[str, Any], *, token: str | None, grants: Grants,
        deadline: float,
    ) -> UpstreamResult:
        async def call(conn: Conn) -> UpstreamResult:
            return _result(await conn.call(tool, dict(arguments), _left(deadline)))

        return await self._with_session(token, deadline, call)

    async def aclose(self) -> None:
        sessions, self._sessions = list(self._sessions.values()), OrderedDict()
        for session in sessions:
            await session.close()
        if self._http is not None:
            await self._http.close()

    async def _with_session(self, token: str | None, deadline: float, work: Callable[[Conn], Awaitable[T]]) -> T:
        """``work(conn)`` on this token's session; once more on a new session when that one failed."""
        attempt = 0
        while True:
            attempt += 1
            session = self._session(token)
            try:
                async with asyncio.timeout(_left(deadline)):
                    return await work(session)
            except TimeoutError:
                raise UpstreamFailure(f"MCP server {self.name!r} did not answer in time") from None
            except WireUnsupported:  # the SDK's client from now on; not counted as an attempt
                self._handshake = False
                attempt -= 1
                failure: BaseException | None = None
            except MCPError as err:
                if not _session_lost(err):
                    raise
                failure = err
            except Exception as exc:  # the transport's errors: connection refused, reset, bad replies
                failure = exc
            await self._drop(token, session)
            if failure is not None and attempt >= 2:
                raise UpstreamFailure(f"MCP server {self.name!r} failed: {_describe(failure)}") from None

    def _session(self, token: str | None) -> Conn:
        session = self._sessions.get(token)
        if session is not None:
            self._sessions.move_to_end(token)
            return session
        session = self._open(self._headers(token))
        self._sessions[token] = session
        while len(self._sessions) > self._max:
            _, oldest = self._sessions.popitem(last=False)
            asyncio.get_running_loop().create_task(oldest.close())
        return session

    def _open(self, headers: dict[str, str]) -> Conn:
        if not self._handshake:
            return _Session(self._url, headers)
        if self._http is None:
            self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None, sock_connect=10))
        return _Wire(WireSession(self._http, self._url, headers))

    async def _drop(self, token: str | None, session: Conn) -> None:
        if self._sessions.get(token) is session:
            del self._sessions[token]
        await session.close()

    def _headers(self, token: str | None) -> dict[str, str]:
        if token is None:
            return {}
        return {self._server.header: self._server.format.format(value=token)}

    def _tool(self, tool: Tool) -> UpstreamTool:
        annotations = tool.annotations.model_dump(mode="json", by_alias=True, exclude_none=True) \
            if tool.annotations is not None else None
        return UpstreamTool(self.name, tool.name, tool.description or "", dict(tool.input_schema), annotations)


class _Wire:
    """A ``WireSession`` as a ``Conn``: results checked with the SDK's types; a lost session is a failure."""

    def __init__(self, session: WireSession) -> None:
        self._session = session

    async def list_page(self, cursor: str | None) -> ListToolsResult:
        return ListToolsResult.model_validate(await self._request("tools/list",
                                                                  {"cursor": cursor} if cursor else None))

    async def call(self, tool: str, arguments: dict[str, Any], timeout_s: float) -> CallToolResult:
        return CallToolResult.model_validate(await self._request("tools/call", {"name": tool, "arguments": arguments}))

    async def _request(self, method: str, params: dict[str, Any] | None) -> dict[str, Any]:
        try:
            return await self._session.request(method, params)
        except SessionLost as err:
            raise UpstreamFailure(str(err)) from None

    async def close(self) -> None:
        await self._session.close()


class _Session:
    """One SDK client, opened by its own task on first use and held open until ``close``."""

    def __init__(self, url: str, headers: dict[str, str]) -> None:
        self._url = url
        self._headers = headers
        self._ready: asyncio.Future[Client] | None = None
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def list_page(self, cursor: str | None) -> ListToolsResult:
        return await (await self.client()).list_tools(cursor=cursor, cache_mode="refresh")

    async def call(self, tool: str, arguments: dict[str, Any], timeout_s: float) -> CallToolResult:
        return await (await self.client()).session.call_tool(tool, arguments, read_timeout_seconds=timeout_s)

    async def client(self) -> Client:
        if self._ready is None:
            self._ready = asyncio.get_running_loop().create_future()
            self._task = asyncio.create_task(self._hold(self._ready))
        return await asyncio.shield(self._ready)

    async def _hold(self, ready: asyncio.Future[Client]) -> None:
        try:
            http = httpx2.AsyncClient(headers=self._headers, timeout=httpx2.Timeout(30, read=300),
                                      transport=_KeepAlive(httpx2.AsyncHTTPTransport()))
            transport = streamable_http_client(self._url, http_client=http)
            async with http, Client(transport, mode="auto", cache=None) as client:
                ready.set_result(client)
                await self._stop.wait()
        except BaseException as exc:  # handed to whoever waits for the session
            if not ready.done():
                ready.set_exception(exc if isinstance(exc, Exception) else UpstreamFailure("session closed"))
            if isinstance(exc, asyncio.CancelledError):
                raise

    async def close(self) -> None:
        self._stop.set()
        task = self._task
        if task is None:
            return
        try:
            async with asyncio.timeout(5):
                await asyncio.shield(task)
        except (TimeoutError, Exception):
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
        if self._ready is not None and self._ready.done() and not self._ready.cancelled():
            self._ready.exception()  # retrieved: a failed session's error is not "never retrieved"


class _KeepAlive(httpx2.AsyncBaseTransport):
    """Keeps connections reusable. The SDK closes an SSE reply as soon as its JSON-RPC response arrived,
    before the server ends the stream: unread, the connection would be dropped and the next call would
    open a new one. Closing such a reply first reads its rest when that comes at once (``_Draining``)."""

    def __init__(self, inner: httpx2.AsyncBaseTransport) -> None:
        self._inner = inner

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        response = await self._inner.handle_async_request(request)
        if request.method == "POST" and isinstance(response.stream, httpx2.AsyncByteStream):
            response.stream = _Draining(response.stream)  # not the GET stream: that one stays open
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()


class _Draining(httpx2.AsyncByteStream):
    def __init__(self, inner: httpx2.AsyncByteStream) -> None:
        self._inner = inner

    async def __aiter__(self) -> Any:
        async for part in self._inner:
            yield part

    async def aclose(self) -> None:
        read = 0
        try:
            with anyio.move_on_after(DRAIN_S):  # the SDK's task group: its cancellation still wins
                async for part in self._inner:
                    read += len(part)
                    if read > DRAIN_BYTES:
                        break
        except (httpx2.HTTPError, RuntimeError):
            pass
        finally:
            await self._inner.aclose()


def _result(result: CallToolResult) -> UpstreamResult:
    content = tuple(block.model_dump(mode="json", by_alias=True, exclude_none=True) for block in result.content)
    structured = result.structured_content if isinstance(result.structured_content, dict) else None
    return UpstreamResult(content, is_error=result.is_error, structured=structured)


def _session_lost(err: MCPError) -> bool:
    """The server forgot the session (404), or the session's connection closed (the server went away)."""
    return ((err.code == INVALID_REQUEST and "Session terminated" in err.message)
            or (err.code == CONNECTION_CLOSED and err.message == "Connection closed"))


def _describe(exc: BaseException) -> str:
    text = " ".join(str(exc).split())[:200]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _left(deadline: float) -> float:
    return max(deadline - time.monotonic(), 0.001)
