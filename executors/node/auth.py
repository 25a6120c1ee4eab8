"""``SignatureMiddleware``: pure ASGI; every request must be signed by the control plane *for this node
process*, and every answer is signed by this node (see ``executors.signing``).

The audience is ``NODE_ID@BOOT``: ``BOOT`` is random per process and sent in every heartbeat, so a
job captured before a restart is refused after it, although the restarted process has forgotten the
nonces it saw. A request signed for another node or boot, a replayed nonce, a stale timestamp or a
key other than the one pinned at enrollment is a 401 before any handler runs.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from executors.errors import AuthError
from executors.signing import CONTROL_PLANE, NONCE_HEADER, NonceCache, audience, sign, verify

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
    """401 unless the control plane's pinned key signed the request for ``node_id``; answers signed back."""

    def __init__(self, app: ASGIApp, *, node_id: str, boot: str, key: Ed25519PrivateKey,
                 control_plane: Ed25519PublicKey, nonces: NonceCache | None = None) -> None:
        self.app = app
        self.node_id = node_id
        self.audience = audience(node_id, boot)
        self.key = key
        self.control_plane = control_plane
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
            verify(self.control_plane, scope["method"], path, headers, body, signer=CONTROL_PLANE,
                   audience=self.audience, nonces=self.nonces, now=time.time())
        except AuthError as exc:
            return await _reply(send, 401, b'{"error": "unauthorized: %s"}' % str(exc).encode())
        delivered = False

        async def replay() -> Message:
            nonlocal delivered
            if delivered:
                return await receive()
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, self._signing(send, path, headers[NONCE_HEADER]))

    def _signing(self, send: Send, path: str, nonce: str) -> Send:
        """Hold the response until its body is complete, then send it with this node's signature."""
        start: Message = {}
        parts: list[bytes] = []

        async def signed_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
                return
            if message["type"] != "http.response.body":
                return await send(message)
            parts.append(message.get("body", b""))
            if message.get("more_body", False):
                return
            body = b"".join(parts)
            extra = sign(self.key, f"RESPONSE {start['status']}", path, body, signer=self.node_id,
                         audience=CONTROL_PLANE, nonce=nonce)
            kept = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
            kept += [(k.encode(), v.encode()) for k, v in extra.items()]
            kept.append((b"content-length", str(len(body)).encode()))
            await send({**start, "headers": kept})
            await send({"type": "http.response.body", "body": body})

        return signed_send
