"""``SignatureMiddleware``: pure ASGI, every HTTP request must be signed (see ``executors.signing``)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from executors.errors import AuthError
from executors.signing import NonceCache, verify

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
MAX_BODY = 8 * 1024 * 1024


async def _reply(send: Send, status: int, text: bytes) -> None:
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(text)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": text})


async def _read_body(receive: Receive) -> bytes | None:
    parts: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            return None
        parts.append(chunk)
        if not message.get("more_body", False):
            return b"".join(parts)


class SignatureMiddleware:
    """Reject (401) any request whose HMAC signature, timestamp or nonce does not verify."""

    def __init__(self, app: ASGIApp, *, secret: bytes, nonces: NonceCache | None = None) -> None:
        self.app = app
        self.secret = secret
        self.nonces = nonces or NonceCache()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        body = await _read_body(receive)
        if body is None:
            return await _reply(send, 413, b'{"error": "body too large"}')
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        query = scope.get("query_string", b"").decode("latin-1")
        path = scope["path"] + (f"?{query}" if query else "")
        try:
            verify(self.secret, scope["method"], path, headers, body, self.nonces, now=time.time())
        except AuthError as exc:
            return await _reply(send, 401, b'{"error": "unauthorized: %s"}' % str(exc).encode())
        delivered = False

        async def replay() -> Message:
            nonlocal delivered
            if delivered:
                return await receive()
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)
