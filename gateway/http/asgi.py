"""Endpoints as plain ASGI callables: one ``Request`` and one response, no wrapper layers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

Handle = Callable[[Request], Awaitable[Response]]


class Endpoint:
    """Wraps ``handle(request) -> Response``; Starlette's ``Route`` mounts it as an ASGI app."""

    __slots__ = ("_handle",)

    def __init__(self, handle: Handle) -> None:
        self._handle = handle

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = await self._handle(Request(scope, receive))
        await response(scope, receive, send)
