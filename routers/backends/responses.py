"""``POST /v1/responses`` through any backend: translated over its chat completions, or passed through.

``over_chat`` (chat-only servers, Anthropic): Responses request → chat request → the backend's own
chat path → Response object or Responses events. ``native`` (``responses: native``): the request as
the backend should see it (``responses_native``), its answer patched. Both show the gateway's file
search (``responses_citations``), record the final Response (``RESPONSE``) and its usage just before
it goes out, and number and frame the events themselves.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import replace
from typing import Any

import orjson

from gateway.kernel.context import Reply, ReplyStream, RequestContext
from gateway.kernel.errors import UpstreamError
from gateway.kernel.responses import IDENTITY, FileSearch, ResponseIdentity
from gateway.kernel.sse import DONE, SseSplitter, data_of, json_object, sse_events
from gateway.services.responses_wire.responses_citations import CitedEvents, cite_response
from gateway.services.responses_wire.responses_object import from_completion
from gateway.services.responses_wire.responses_request import chat_request
from gateway.services.responses_wire.responses_stream import ChatStreamTranslator
from gateway.services.responses_wire.served import frame_events, record, served_search
from routers.backends.responses_native import native_request, patch

Send = Callable[[RequestContext, str], Awaitable[Reply]]
Events = AsyncGenerator[list[dict[str, Any]], None]
SSE = "text/event-stream"


async def over_chat(send: Send, ctx: RequestContext, upstream_model: str) -> Reply:
    body, fs = ctx.body, served_search(ctx)
    identity = ctx.get(IDENTITY)
    chat = replace(ctx, route="chat", body=chat_request(body, ctx.stream))
    reply = await send(chat, upstream_model)
    if reply.stream is not None:
        return Reply(stream=framed(ctx, _translated(reply.stream, body, identity), fs), media_type=SSE,
                     headers=reply.headers)
    ctx.usage = chat.usage
    if reply.status != 200:
        return reply
    return _whole(ctx, from_completion(body, _document(reply.body, ctx), identity), fs, reply)


async def native(send: Send, ctx: RequestContext, upstream_model: str) -> Reply:
    body, fs, identity = ctx.body, served_search(ctx), ctx.get(IDENTITY)
    reply = await send(replace(ctx, body=native_request(body)), upstream_model)
    if reply.stream is not None:
        return Reply(stream=framed(ctx, _patched(reply.stream, body, identity), fs), media_type=SSE,
                     headers=reply.headers)
    if reply.status != 200:
        return reply
    return _whole(ctx, patch(_document(reply.body, ctx), body, identity), fs, reply)


def _document(body: bytes, ctx: RequestContext) -> dict[str, Any]:
    try:
        doc: Any = orjson.loads(body)
    except orjson.JSONDecodeError:
        doc = None
    if not isinstance(doc, dict):
        raise UpstreamError(f"Backend {ctx.backend!r} answered with something other than a JSON object.")
    return doc


def _whole(ctx: RequestContext, response: dict[str, Any], fs: FileSearch | None, reply: Reply) -> Reply:
    if fs is not None:
        cite_response(response, fs)
    record(ctx, response)
    return Reply(body=orjson.dumps(response), headers=reply.headers)


async def _translated(chunks: ReplyStream, body: dict[str, Any], identity: ResponseIdentity | None) -> Events:
    """The events of each relayed piece of the chat stream, in one batch (one write to the client); the
    closing events go with the piece that carries ``[DONE]`` (a short answer is one write, as in chat)."""
    translator = ChatStreamTranslator(body, identity)
    split = SseSplitter()
    try:
        async for chunk in chunks:
            events: list[dict[str, Any]] = []
            ended = False
            for raw in split.feed(chunk):
                payload = data_of(raw)
                ended = ended or payload == DONE
                doc = json_object(payload)
                if doc is not None:
                    events += translator.feed(doc)
            if ended or translator.done:
                events += translator.finish()
            if events:
                yield events
            if translator.done:
                return
        yield translator.finish()
    finally:
        await chunks.aclose()


async def _patched(chunks: ReplyStream, body: dict[str, Any], identity: ResponseIdentity | None) -> Events:
    try:
        async for _, doc in sse_events(chunks):
            if doc is None:
                continue
            if isinstance(doc.get("error"), dict) and "type" not in doc:  # the gateway's own broken-stream event
                err = doc["error"]
                doc = {"type": "error", "code": err.get("code"), "message": str(err.get("message")), "param": None}
            elif isinstance(doc.get("response"), dict):
                patch(doc["response"], body, identity)
            yield [doc]
    finally:
        await chunks.aclose()


async def framed(ctx: RequestContext, source: Events, fs: FileSearch | None) -> AsyncGenerator[bytes, None]:
    """Number and frame the events; the final Response is recorded before its event is sent."""
    cite = CitedEvents(fs) if fs is not None else None
    seq = 0
    try:
        async for batch in source:
            frames, seq = frame_events(ctx, cite(batch) if cite is not None else batch, seq)
            if frames:
                yield frames
    finally:
        await source.aclose()
