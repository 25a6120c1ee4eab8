"""Accept a sane incoming ``x-request-id`` or mint one; echo it on the response."""

from __future__ import annotations

import re

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.kernel.observability.exchange import SCOPE_KEY, Exchange, RequestIds

_SAFE_ID = re.compile(rb"^[A-Za-z0-9._:\-]{1,128}$")


class RequestIdMiddleware:
    def __init__(self, app: ASGIApp, ids: RequestIds, header: str = "x-request-id") -> None:
        self.app = app
        self._ids = ids
        self._header = header.lower().encode("latin-1")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = self._incoming(scope) or self._ids.new()
        scope[SCOPE_KEY] = Exchange(request_id=request_id)
        pair = (self._header, request_id.encode("latin-1"))

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), pair]
            await send(message)

        await self.app(scope, receive, send_with_id)

    def _incoming(self, scope: Scope) -> str | None:
        for name, value in scope["headers"]:
            if name == self._header:
                return value.decode("latin-1") if _SAFE_ID.match(value) else None
        return None
