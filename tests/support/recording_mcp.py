"""A small MCP server (the ``mcp`` SDK's server side, streamable HTTP) that says which credential it got.

Its tool ``whoami`` answers the ``Authorization`` header of the request that called it (``whoami_resource``
the same inside an embedded resource), ``digest`` that
header's SHA-256 (which a redactor does not recognise: a test can tell whose token came), ``requests`` how
many HTTP requests the server has received (a client that reuses its session sends one per call),
``connections`` on how many TCP connections; ``echo`` echoes.
Every request's ``Authorization`` header is also printed (``seen: ...``), so a test can read what reached
the server. Prints ``listening on http://127.0.0.1:PORT`` when ready.

With ``--legacy`` it answers ``server/discover`` with "method not found", as a server that speaks only the
handshake revisions (2025-11-25 and before) does: clients then initialize a session and get SSE replies.
With ``--modern`` it answers ``initialize`` so, as a server that speaks only the stateless 2026-07-28
revision does.

    python -m tests.support.recording_mcp [--port 0] [--legacy | --modern]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import socket
import sys
from typing import Any

import orjson
import uvicorn
from mcp.server.mcpserver import Context, MCPServer
from mcp_types import EmbeddedResource, TextResourceContents
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send


def build() -> MCPServer:
    server = MCPServer("recorder")

    @server.tool(description="The Authorization header this call arrived with.")
    def whoami(ctx: Context[Any, Any]) -> str:
        request = ctx.request_context.request
        return request.headers.get("authorization", "") if isinstance(request, Request) else ""

    @server.tool(description="The SHA-256 of the Authorization header this call arrived with.")
    def digest(ctx: Context[Any, Any]) -> str:
        return hashlib.sha256(whoami(ctx).encode()).hexdigest()

    @server.tool(description="The Authorization header, as the text of an embedded resource.")
    def whoami_resource(ctx: Context[Any, Any]) -> list[EmbeddedResource]:
        contents = TextResourceContents(uri="mem://whoami", text=whoami(ctx), mime_type="text/plain")
        return [EmbeddedResource(type="resource", resource=contents)]

    @server.tool(description="How many HTTP requests the server has received so far.")
    def requests() -> str:
        return str(Seen.count)

    @server.tool(description="How many TCP connections the server has been sent requests on so far.")
    def connections() -> str:
        return str(len(Seen.peers))

    @server.tool(description="Echoes the message back.")
    def echo(message: str) -> str:
        return f"Echo: {message}"

    return server


class Seen:
    """Prints the Authorization header of every HTTP request (the test reads the process's output)."""

    count = 0
    peers: set[tuple[str, int]] = set()

    def __init__(self, app: ASGIApp, legacy: bool, modern: bool = False) -> None:
        self.app = app
        self.legacy = legacy
        self.modern = modern

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            Seen.count += 1
            Seen.peers.add(tuple(scope["client"] or ("", 0)))
            headers = dict(scope["headers"])
            print(f"seen: {headers.get(b'authorization', b'').decode()}", flush=True)
            if (self.legacy or self.modern) and scope["method"] == "POST":
                await self._only(scope, receive, send)
                return
        await self.app(scope, receive, send)

    async def _only(self, scope: Scope, receive: Receive, send: Send) -> None:
        """One era: ``server/discover`` refused (legacy), or ``initialize`` (modern)."""
        body, more = b"", True
        while more:
            message = await receive()
            body, more = body + message.get("body", b""), message.get("more_body", False)
        if b'"server/discover"' in body if self.legacy else b'"initialize"' in body:
            request = orjson.loads(body)
            unknown = {"code": -32601, "message": "Method not found"}
            error = {"jsonrpc": "2.0", "id": request.get("id"), "error": unknown}
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"application/json")]})
            await send({"type": "http.response.body", "body": orjson.dumps(error)})
            return
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


async def serve(port: int, legacy: bool, modern: bool) -> None:
    app = build().streamable_http_app(stateless_http=False)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a test restarts it on its port
    sock.bind(("127.0.0.1", port))
    sock.listen(128)  # connections made as soon as the line below is read wait in the backlog, not refused
    config = uvicorn.Config(Seen(app, legacy, modern), log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    print(f"listening on http://127.0.0.1:{sock.getsockname()[1]}", flush=True)
    await server.serve(sockets=[sock])


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--legacy", action="store_true")
    parser.add_argument("--modern", action="store_true")
    args = parser.parse_args()
    asyncio.run(serve(args.port, args.legacy, args.modern))
    return 0


if __name__ == "__main__":
    sys.exit(main())
