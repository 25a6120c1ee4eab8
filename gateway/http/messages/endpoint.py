"""``POST /v1/messages`` and ``POST /v1/messages/count_tokens``: Anthropic's Messages API on any backend.

A Messages request is validated once, translated into a chat completion request (``request.py``) and
run as a ``chat`` context through ``gateway.handler`` — the same chain (authn, authz, limits, cache,
rag, tools) and router as ``/v1/chat/completions``, so every backend type serves it. The chat reply
comes back as a ``message`` (``reply.py``) or as Messages SSE events (``stream.py``); errors, before
or during a stream, are Anthropic's (``errors.py``, the doors' renderer).

``count_tokens`` is authorized like a create: the model must exist (404), be granted to the key and
be allowed by the policy for action ``chat`` with the same resource (model, modality, tools); its
door draws one request from the caller's rate limits. The count is the gateway's estimate
(``tokens.py``); no backend is called.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import TYPE_CHECKING, Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from gateway.http.messages.errors import SHUTTING_DOWN, from_openai
from gateway.http.messages.reply import to_message
from gateway.http.messages.request import chat_body, to_chat_request
from gateway.http.messages.schema import MessagesInput, MessagesRequest
from gateway.http.messages.stream import MessageEvents
from gateway.http.messages.tokens import count_input_tokens
from gateway.http.openai_json import resolve_model
from gateway.http.parsing import parse_object, validate
from gateway.http.responses import reply_response
from gateway.kernel.context import Principal, Reply, ReplyStream, RequestContext
from gateway.kernel.errors import GatewayError, PermissionDenied, UpstreamError
from gateway.kernel.extension import parse_extension
from gateway.kernel.grants import may_use_model
from gateway.kernel.observability.exchange import exchange_of
from gateway.services.policy.gate import PolicyGate, denied

if TYPE_CHECKING:
    from gateway.wiring import Gateway

_SSE = "text/event-stream"


class MessagesEndpoint:
    def __init__(self, gateway: Gateway, gate: PolicyGate) -> None:
        self._gateway = gateway
        self._gate = gate

    async def create(self, request: Request, principal: Principal | None) -> Response:
        raw = parse_object(await request.body())
        req = validate(raw, MessagesRequest)
        body = to_chat_request(req, raw)
        ctx = self._context(request, principal, req.model, body, stream=req.stream is True)
        reply = await self._gateway.handler(ctx)
        return reply_response(self._translate(reply, ctx, req), ctx, SHUTTING_DOWN)

    async def count_tokens(self, request: Request, principal: Principal | None) -> dict[str, Any]:
        inp = validate(parse_object(await request.body()), MessagesInput)
        ctx = self._context(request, principal, inp.model, chat_body(inp), stream=False)
        if not ctx.auto and not may_use_model(principal, ctx.model):
            raise PermissionDenied(f"The model {ctx.model!r} is not granted to this key.", param="model",
                                   code="model_not_granted")
        decision = await self._gate.request(ctx)
        if not decision.allow:
            raise denied(decision)
        return {"input_tokens": count_input_tokens(inp)}

    def _context(self, request: Request, principal: Principal | None, model: str, body: dict[str, Any], *,
                 stream: bool) -> RequestContext:
        ex = exchange_of(request.scope)
        ctx = RequestContext(ex.request_id, "chat", model, body, request.headers, stream, principal=principal,
                             extension=parse_extension(body), requested_model=model)
        ex.ctx = ctx
        resolve_model(ctx, self._gateway)
        return ctx

    def _translate(self, reply: Reply, ctx: RequestContext, req: MessagesRequest) -> Reply:
        stops = req.stop_sequences or ()
        if reply.status >= 400:
            return Reply(status=reply.status, body=from_openai(reply.status, reply.body), headers=reply.headers)
        if not req.stream:
            message = to_message(_completion(reply.body, ctx), req.model, stops)
            return Reply(body=orjson.dumps(message), headers=reply.headers)
        events = MessageEvents(req.model, stops, count_input_tokens(req))
        if reply.stream is not None:
            return Reply(stream=_relay(reply.stream, events), media_type=_SSE, headers=reply.headers)
        # A whole answer to a stream request: a replayed cache entry (SSE) or a completion (as one chunk).
        sse = reply.body if reply.media_type.startswith(_SSE) else b"data: " + reply.body + b"\n\n"
        return Reply(body=events.feed(sse) + events.end(), media_type=_SSE, headers=reply.headers)


def _completion(body: bytes, ctx: RequestContext) -> dict[str, Any]:
    try:
        completion = orjson.loads(body)
    except orjson.JSONDecodeError:
        completion = None
    if not isinstance(completion, dict):
        raise UpstreamError(f"Backend {ctx.backend!r} answered with something other than a chat completion.")
    return completion


async def _relay(chunks: ReplyStream, events: MessageEvents) -> AsyncGenerator[bytes, None]:
    """The chain's stream as Messages events; a failure after the start is an ``event: error``."""
    try:
        async for chunk in chunks:  # read to the end even once finished, so the connection is reused
            out = events.feed(chunk)
            if out:
                yield out
        out = events.end()
        if out:
            yield out
    except GatewayError as err:
        yield events.fail(err.status, err.message)
    finally:
        await chunks.aclose()
