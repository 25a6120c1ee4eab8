"""The MCP server behind ``POST /mcp``: the SDK's low-level ``Server`` on its streamable-HTTP transport.

The front door authenticates, rate-limits and labels the request (route ``mcp``); the handler puts the
caller into the ASGI scope and hands the untouched request to the SDK's session manager. The manager
runs stateless: no ``Mcp-Session-Id``, nothing kept between requests, so any replica answers any
request of a client's session. Protocol revisions: those of the ``initialize`` handshake (2024-11-05
to 2025-11-25, 2025-06-18 included) and the stateless per-request revision 2026-07-28 (chosen by the
``MCP-Protocol-Version`` header, as the SDK routes it). Replies to requests are SSE streams (JSON when
the 2026 path finishes before emitting anything), so progress notifications ride the reply.

The manager's task group lives in one task of this process, started on the first request and ended
by ``aclose`` (the gateway's shutdown). Without authn on a loopback address, only loopback ``Host`` and
``Origin`` values are admitted (``refused_host``): there is no key to stop a web page then.
"""

from __future__ import annotations

import asyncio
import ipaddress
from typing import Any
from urllib.parse import urlsplit

from mcp.server.lowlevel import Server
from mcp.server.streamable_http import check_accept_headers
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.http.mcp.tools import CALLER, McpTools
from gateway.kernel.context import Principal
from gateway.kernel.errors import GatewayError, PermissionDenied, ServiceOverloaded

INSTRUCTIONS = ("Tools of the llmops gateway. Each call is authorized by the gateway's policy for your key "
                "and runs in a sandbox on a data-plane node.")


class McpEndpoint:
    def __init__(self, tools: McpTools, *, version: str, max_body_bytes: int, loopback_only: bool) -> None:
        server: Server[Any] = Server("llmops-gateway", version=version, instructions=INSTRUCTIONS,
                                     on_list_tools=tools.list_tools, on_call_tool=tools.call_tool,
                                     get_tool_input_schema=tools.input_schema)
        self._manager = StreamableHTTPSessionManager(server, stateless=True, json_response=False,
                                                     max_request_body_size=max_body_bytes)
        self._loopback_only = loopback_only
        self._runner: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self._stop = asyncio.Event()

    async def handle(self, request: Request, principal: Principal | None) -> Response:
        """The door's handler: the request goes on to the SDK, with its caller."""
        refused = (refused_host(request) if self._loopback_only else None) or refused_media(request)
        if refused is not None:
            raise refused
        await self._started()
        request.scope[CALLER] = principal
        return Handoff(self._manager.handle_request)

    async def _started(self) -> None:
        if self._stop.is_set():
            raise ServiceOverloaded("The gateway is shutting down; retry the request.", code="server_shutting_down")
        if self._runner is None:
            self._runner = asyncio.create_task(self._run())
        await self._ready.wait()

    async def _run(self) -> None:
        async with self._manager.run():
            self._ready.set()
            await self._stop.wait()

    async def aclose(self) -> None:
        self._stop.set()
        if self._runner is not None:
            await self._runner


class Handoff(Response):
    """A response that is another ASGI app answering the same request (here, the SDK's transport)."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app
        self.background = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._app(scope, receive, send)


def refused_media(request: Request) -> GatewayError | None:
    """What the SDK would refuse in plain text or with an empty body, refused in the route's envelope."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/json":
        return GatewayError("Content-Type must be application/json.", status=415, code="unsupported_media_type")
    if not all(check_accept_headers(request)):
        return GatewayError("Accept must include application/json and text/event-stream.", status=406,
                            code="not_acceptable")
    return None


def refused_host(request: Request) -> GatewayError | None:
    """For an open gateway on loopback (no key to stop a web page): a ``Host`` or ``Origin`` that is not
    loopback is a DNS-rebinding attempt or a cross-site request, and is refused (421, 403)."""
    if not loopback(_hostname(f"//{request.headers.get('host', '')}")):
        return GatewayError("The Host header must name a loopback address.", status=421, code="invalid_host")
    origin = request.headers.get("origin")
    if origin is not None and not loopback(_hostname(origin)):
        return PermissionDenied("Requests from a web page of another origin are refused.", code="invalid_origin")
    return None


def _hostname(url: str) -> str | None:
    try:
        return urlsplit(url).hostname
    except ValueError:  # a malformed IPv6 literal
        return None


def loopback(host: str | None) -> bool:
    if host is None:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
