"""The last line of defence: anything the routes did not answer becomes an error in the API's envelope.

The envelope is OpenAI's, or the one the route's door chose once it was entered (``Exchange.error_body``:
an unhandled error on ``/v1/messages`` is rendered in Anthropic's). Before any door is entered (an unknown
URL, a wrong method, a body over the size limit) the envelope is chosen by path prefix (``envelopes``).

``HTTPException`` from routing (404 unknown URL, 405 wrong method) and any ``GatewayError`` map to
their envelopes; anything else is a 500 ``internal_error`` whose type is logged, never a traceback
on the wire. No send wrapper on the happy path: if the response had already started, the second
start is refused by the server and the connection is simply closed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.kernel.errors import ErrorBody, GatewayError, MethodNotAllowed, NotFound, ServiceOverloaded
from gateway.kernel.observability.exchange import exchange_of
from gateway.kernel.observability.logging import JsonLog


class ErrorMiddleware:
    def __init__(self, app: ASGIApp, log: JsonLog, envelopes: Mapping[str, ErrorBody] | None = None) -> None:
        self.app = app
        self._log = log
        self._envelopes = tuple((envelopes or {}).items())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # Routing raises HTTPException (rather than answering in plain text) when "app" is set.
        scope.setdefault("app", self.app)
        try:
            await self.app(scope, receive, send)
        except asyncio.CancelledError:
            # The server cancels what is still running when its shutdown grace ends: a request that
            # has not answered yet gets a 503 in the envelope (a started response is left alone).
            await self._answer(scope, send, ServiceOverloaded(
                "The gateway is shutting down; retry the request.", code="server_shutting_down"))
            raise
        except HTTPException as exc:
            await self._answer(scope, send, _from_http(scope, exc))
        except GatewayError as exc:
            await self._answer(scope, send, exc)
        except Exception as exc:
            ex = exchange_of(scope)
            self._log.error("unhandled_error", request_id=ex.request_id, exception=type(exc).__name__)
            await self._answer(scope, send, GatewayError("The gateway hit an internal error.", code="internal_error"))

    async def _answer(self, scope: Scope, send: Send, err: GatewayError) -> None:
        ex = exchange_of(scope)
        ex.error_code = err.code
        render = ex.error_body or self._by_path(scope.get("path", ""))
        body = render(err) if render is not None else err.body()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        headers += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in err.headers.items()]
        try:
            await send({"type": "http.response.start", "status": err.status, "headers": headers})
            await send({"type": "http.response.body", "body": body})
        except RuntimeError:
            pass  # the response had already started: nothing more can be said on this connection

    def _by_path(self, path: str) -> ErrorBody | None:
        for prefix, render in self._envelopes:
            if path == prefix or path.startswith(prefix + "/"):
                return render
        return None


def _from_http(scope: Scope, exc: HTTPException) -> GatewayError:
    method, path = scope.get("method", "?"), scope.get("path", "?")
    if exc.status_code == 405:
        return MethodNotAllowed(f"Method {method} is not allowed for {path}.", headers=exc.headers)
    if exc.status_code == 404:
        return NotFound(f"Invalid URL ({method} {path}).", code="unknown_url")
    return GatewayError(str(exc.detail), status=exc.status_code)
