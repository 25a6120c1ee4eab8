"""The hot path to an upstream MCP server over streamable HTTP: one initialized session, requests posted
on the gateway's aiohttp, messages built and checked with the SDK's own types (``mcp_types``).

Why not the SDK's ``Client`` for every call: measured on this machine, its per-call machinery (a task
group and memory streams per request, pydantic both ways, httpx) costs about 6 ms of CPU per
``tools/call``, many times the rest of the gateway's hop. This speaks the same messages: ``initialize``
(a handshake revision, 2024-11-05 to 2025-11-25), ``notifications/initialized``, then one POST per
request carrying ``Mcp-Session-Id`` and ``MCP-Protocol-Version``; a reply is JSON or an SSE stream read up
to the response with the request's id (notifications before it are skipped; a request from the server,
which the gateway does not serve, is answered "method not found" as the SDK's client would). The rest of
an SSE reply is read in the background so the connection is reused.

A server that refuses the handshake (``WireUnsupported``) is left to the SDK's client (``http.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Coroutine
from typing import Any

import aiohttp
import orjson
from mcp.shared.exceptions import MCPError
from mcp_types import INVALID_REQUEST, METHOD_NOT_FOUND, ClientCapabilities, Implementation, InitializeRequestParams
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS, LATEST_HANDSHAKE_VERSION

from gateway.kernel.sse import SseSplitter, data_of, json_object

ACCEPT = "application/json, text/event-stream"
DRAIN_S = 5.0  # how long the rest of an SSE reply may take before its connection is given up
CLIENT = Implementation(name="llmops-gateway", version="0.1.0")
_NO_HANDSHAKE = frozenset({400, 404, 405, 406, 415})  # how a server without the handshake refuses it


class WireUnsupported(Exception):
    """The server does not take the ``initialize`` handshake (it may speak only a stateless revision)."""


class SessionLost(Exception):
    """The server no longer knows the session (404), or answered something that is not MCP."""


class Refused(SessionLost):
    """The server answered the POST with an HTTP error."""

    def __init__(self, status: int, text: str) -> None:
        super().__init__(f"HTTP {status}: {text}" if text else f"HTTP {status}")
        self.status = status


class WireSession:
    """One handshake-era session on ``url`` with fixed ``headers`` (the credential, if any)."""

    def __init__(self, http: aiohttp.ClientSession, url: str, headers: dict[str, str]) -> None:
        self._http = http
        self._url = url
        self._headers = {"accept": ACCEPT, "content-type": "application/json", **headers}
        self._ids = itertools.count(1)
        self._opened: asyncio.Task[None] | None = None
        self._pending: set[asyncio.Task[None]] = set()

    async def request(self, method: str, params: dict[str, Any] | None) -> dict[str, Any]:
        """The ``result`` of ``method``; a JSON-RPC error is raised as the SDK's ``MCPError``."""
        await self._open()
        return await self._exchange(method, params)

    async def _open(self) -> None:
        if self._opened is None:
            self._opened = asyncio.ensure_future(self._handshake())
        await asyncio.shield(self._opened)

    async def _handshake(self) -> None:
        params = InitializeRequestParams(protocol_version=LATEST_HANDSHAKE_VERSION,
                                         capabilities=ClientCapabilities(), client_info=CLIENT)
        try:
            result = await self._exchange("initialize", params.model_dump(mode="json", by_alias=True,
                                                                          exclude_none=True))
        except MCPError as err:
            raise WireUnsupported(err.error.message) from None
        except Refused as err:
            if err.status not in _NO_HANDSHAKE:
                raise
            raise WireUnsupported(str(err)) from None
        version = result.get("protocolVersion")
        if version not in HANDSHAKE_PROTOCOL_VERSIONS:
            raise WireUnsupported(f"the server answered protocol version {version!r}")
        self._headers["mcp-protocol-version"] = str(version)
        await self._post({"jsonrpc": "2.0", "method": "notifications/initialized"}, notification=True)

    async def _exchange(self, method: str, params: dict[str, Any] | None) -> dict[str, Any]:
        request_id = next(self._ids)
        message: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id, "method": method}
        if params is not None:
            message["params"] = params
        reply = await self._post(message)
        if reply is None:
            raise SessionLost(f"the server answered {method} with no body")
        return await self._answer(reply, request_id)

    async def _post(self, message: dict[str, Any], *, notification: bool = False) -> aiohttp.ClientResponse | None:
        reply = await self._http.post(self._url, data=orjson.dumps(message), headers=self._headers)
        if reply.status == 404 and "mcp-session-id" in self._headers:
            reply.release()
            raise SessionLost("the server no longer knows the session")
        if reply.status >= 400:
            text = (await reply.read())[:200].decode(errors="replace")
            raise Refused(reply.status, " ".join(text.split()))
        session = reply.headers.get("mcp-session-id")
        if session is not None and "mcp-session-id" not in self._headers:
            self._headers["mcp-session-id"] = session
        if notification or reply.status == 202:
            reply.release()
            return None
        return reply

    async def _answer(self, reply: aiohttp.ClientResponse, request_id: int) -> dict[str, Any]:
        if reply.content_type == "application/json":
            return _result(json_object(await reply.read()), request_id)
        if reply.content_type != "text/event-stream":
            reply.release()
            raise SessionLost(f"the server answered with {reply.content_type or 'no content type'}")
        split = SseSplitter()
        async for chunk in reply.content.iter_any():
            for event in split.feed(chunk):
                doc = json_object(data_of(event))
                if doc is None:
                    continue
                if doc.get("id") == request_id and "method" not in doc:
                    self._drain(reply)
                    return _result(doc, request_id)
                if "method" in doc and "id" in doc:  # a request from the server: not served here
                    self._refuse(doc["id"])
        raise SessionLost("the reply ended without the response")

    def _drain(self, reply: aiohttp.ClientResponse) -> None:
        """Read what is left of an SSE reply (the server ends it after the response), then let the connection
        go back to the pool; a reply that does not end in time is closed with its connection."""
        async def drain() -> None:
            try:
                async with asyncio.timeout(DRAIN_S):
                    async for _ in reply.content.iter_any():
                        pass
            except (TimeoutError, aiohttp.ClientError):
                reply.close()
            finally:
                reply.release()

        self._behind(drain())

    def _refuse(self, request_id: Any) -> None:
        error = {"jsonrpc": "2.0", "id": request_id,
                 "error": {"code": METHOD_NOT_FOUND, "message": "The gateway does not serve requests from servers."}}

        async def send() -> None:
            with contextlib.suppress(Exception):
                await self._post(error, notification=True)

        self._behind(send())

    def _behind(self, work: Coroutine[Any, Any, None]) -> None:
        """Run ``work`` after the caller's answer, held (and awaited by ``close``) until it ends."""
        task = asyncio.get_running_loop().create_task(work)
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def close(self) -> None:
        """Ends the session on the server (DELETE, as the spec asks) and waits for pending reads."""
        if self._opened is not None and not self._opened.done():
            self._opened.cancel()
        if "mcp-session-id" in self._headers:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(2):
                    (await self._http.delete(self._url, headers=self._headers)).release()
        for task in list(self._pending):
            task.cancel()
        await asyncio.gather(*self._pending, return_exceptions=True)


def _result(doc: dict[str, Any] | None, request_id: int) -> dict[str, Any]:
    if doc is None or doc.get("id") != request_id:
        raise SessionLost("the reply is not the response to the request")
    error = doc.get("error")
    if isinstance(error, dict):
        raise MCPError(int(error.get("code", INVALID_REQUEST)), str(error.get("message", "")), error.get("data"))
    result = doc.get("result")
    if not isinstance(result, dict):
        raise SessionLost("the response carries no result")
    return result
