"""Responses that pace chunks and can drop the connection on purpose.

Dropping works by returning from the ASGI callable without the final ``more_body=False`` message:
uvicorn then closes the transport, so the client sees a truncated body (no terminating chunk).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping, Sequence

from starlette.responses import Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from simulator.behaviour import Overrides
from simulator.wire import dumps, json_response


def sse_data(payload: object) -> bytes:
    return b"data: " + dumps(payload) + b"\n\n"


def sse_event(event: str, payload: object) -> bytes:
    return b"event: " + event.encode() + b"\ndata: " + dumps(payload) + b"\n\n"


SSE_DONE = b"data: [DONE]\n\n"


class PacedStreamResponse(StreamingResponse):
    """Sends pre-rendered chunks ``itl_ms`` apart; stops abruptly after ``disconnect_after`` chunks."""

    def __init__(self, chunks: Sequence[bytes], overrides: Overrides, media_type: str = "text/event-stream"):
        super().__init__(iter(()), media_type=media_type, headers={"cache-control": "no-cache"})
        self.chunks = chunks
        self.itl_s = overrides.itl_ms / 1000
        self.disconnect_after = overrides.disconnect_after

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        for index, chunk in enumerate(self.chunks):
            if self.disconnect_after is not None and index >= self.disconnect_after:
                return  # abrupt close: the stream never terminates
            if index and self.itl_s > 0:
                await asyncio.sleep(self.itl_s)
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})


class TruncatedResponse(Response):
    """Announces the full ``content-length`` but sends only the first half, then drops the connection."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        half = bytes(self.body[: len(self.body) // 2])
        await send({"type": "http.response.body", "body": half, "more_body": True})


def json_answer(payload: object, overrides: Overrides, headers: Mapping[str, str] | None = None) -> Response:
    """A normal JSON answer, or a truncated one when ``disconnect_after`` is set."""
    if overrides.disconnect_after is not None:
        return TruncatedResponse(dumps(payload), media_type="application/json", headers=headers)
    return json_response(payload, headers=headers)


def stream_answer(chunks: Iterable[bytes], overrides: Overrides) -> Response:
    return PacedStreamResponse(list(chunks), overrides)
