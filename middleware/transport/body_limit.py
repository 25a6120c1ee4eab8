"""Refuse request bodies over a size limit, declared or streamed, before anyone buffers them.

Sits inside ``ErrorMiddleware``: the refusal is a ``PayloadTooLarge`` it renders in the route's envelope."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.kernel.errors import PayloadTooLarge


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self._max = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self._max:
            raise PayloadTooLarge(f"Request body exceeds the limit of {self._max} bytes.")
        seen = 0
        limit = self._max

        async def counting_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise PayloadTooLarge(f"Request body exceeds the limit of {limit} bytes.")
            return message

        await self.app(scope, counting_receive if declared is None else receive, send)

def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
