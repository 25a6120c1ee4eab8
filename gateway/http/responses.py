"""Turn replies and errors into ASGI responses; relay streams with disconnect detection."""

from __future__ import annotations

import asyncio

from starlette.background import BackgroundTask
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from gateway.kernel.context import Reply, ReplyStream, RequestContext
from gateway.kernel.errors import ErrorBody, GatewayError, openai_body

JSON = "application/json"


def error_response(err: GatewayError, render: ErrorBody = openai_body) -> Response:
    return Response(render(err), status_code=err.status, media_type=JSON, headers=err.headers or None)


def reply_response(reply: Reply, ctx: RequestContext, shutdown_event: bytes | None = None) -> Response:
    """``shutdown_event``: the SSE event that ends a stream cut by shutdown (default: OpenAI's error chunk)."""
    headers = {**ctx.response_headers, **reply.headers} if ctx.response_headers or reply.headers else None
    if reply.stream is not None:
        return RelayStream(reply.stream, ctx, headers, shutdown_event or SHUTTING_DOWN_EVENT)
    task = BackgroundTask(run_finalizers, ctx) if ctx.finalizers else None
    return Response(reply.body, status_code=reply.status, media_type=reply.media_type, headers=headers,
                    background=task)


async def run_finalizers(ctx: RequestContext) -> None:
    for finalizer in ctx.finalizers:
        await finalizer(ctx)


class RelayStream(Response):
    """SSE relay: chunks go out as they come (``send`` applies back-pressure); a client that
    disconnects cancels the pump, which closes the upstream stream."""

    media_type = "text/event-stream"

    def __init__(self, chunks: ReplyStream, ctx: RequestContext, headers: dict[str, str] | None,
                 shutdown_event: bytes) -> None:
        self._chunks = chunks
        self._ctx = ctx
        self._shutdown_event = shutdown_event
        self.status_code = 200
        self.background = None
        self.init_headers({"cache-control": "no-cache", "x-accel-buffering": "no", **(headers or {})})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        pump = asyncio.current_task()
        assert pump is not None
        state = {"done": False, "gone": False}
        watcher = asyncio.create_task(_watch_disconnect(receive, pump, state))
        try:
            await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
            async for chunk in self._chunks:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            state["done"] = True
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except asyncio.CancelledError:
            if not state["gone"]:
                # Cancelled with the client still there: the server's shutdown grace ran out. Say so
                # in the stream before the connection closes, rather than ending it silently.
                await _say_shutting_down(send, self._shutdown_event)
                raise
            pump.uncancel()
        except OSError:
            state["gone"] = True
        finally:
            state["done"] = True
            watcher.cancel()
            await self._chunks.aclose()
            await run_finalizers(self._ctx)


async def _watch_disconnect(receive: Receive, pump: asyncio.Task[object], state: dict[str, bool]) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            if not state["done"]:
                state["gone"] = True
                pump.cancel()
            return



SHUTTING_DOWN_EVENT = (
    b'data: {"error": {"message": "The gateway is shutting down; the stream was ended before its answer was '
    b'complete.", "type": "server_error", "param": null, "code": "server_shutting_down"}}\n\n'
)


async def _say_shutting_down(send: Send, event: bytes) -> None:
    try:
        await send({"type": "http.response.body", "body": event, "more_body": False})
    except (OSError, RuntimeError):
        pass  # the connection is already gone
