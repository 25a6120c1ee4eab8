"""``POST /v1/responses``: parse and check once, resolve the model, prepend the stored history, inline
files by id, run the chain (route ``responses``), keep the result. With ``background: true`` the
checks and the model come first as well, then the request is queued (``background.py``) and the
queued Response (or, with ``stream``, its events as they are stored) is the answer.

The router's backends do the rest: translation over chat, or pass-through to a backend that speaks
the API (``routers/backends/responses.py``). ``ctx.body["input"]`` is the history and the caller's
items as sent (no ids minted here, so the cache key of a repeated request repeats); the stored copy
of the caller's input gets ids (``items.own_items``).
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from gateway.http.openai_json import resolve_model
from gateway.http.parsing import parse_object, validate
from gateway.http.responses import JSON, reply_response
from gateway.http.responses_api.background import BackgroundResponses
from gateway.http.responses_api.files import InputFiles
from gateway.http.responses_api.items import check_request, own_items
from gateway.http.responses_api.state import ResponseState
from gateway.kernel.context import Principal, Reply, RequestContext, tenant_of
from gateway.kernel.errors import InvalidRequest
from gateway.kernel.extension import parse_extension
from gateway.kernel.observability.exchange import exchange_of
from gateway.kernel.responses import RESPONSE, as_items, new_id
from gateway.kernel.schemas import ResponsesRequest
from gateway.services.responses_wire.responses_object import envelope

if TYPE_CHECKING:
    from gateway.wiring import Gateway

_RESULT_FIELDS = ("status", "completed_at", "error", "incomplete_details", "output", "usage")


class ResponsesEndpoint:
    def __init__(self, gateway: Gateway, files: InputFiles, state: ResponseState,
                 background: BackgroundResponses | None = None) -> None:
        self._gateway = gateway
        self._files = files
        self._state = state
        self._background = background

    async def handle(self, request: Request, principal: Principal | None) -> Response:
        ex = exchange_of(request.scope)
        raw = parse_object(await request.body())
        typed = validate(raw, ResponsesRequest)
        check_request(raw, typed)
        ctx = RequestContext(ex.request_id, "responses", typed.model, raw, request.headers, typed.stream is True,
                             principal=principal, extension=parse_extension(raw), requested_model=typed.model)
        ex.ctx = ctx
        resolve_model(ctx, self._gateway)
        own = own_items(raw["input"]) if typed.background is True or self._state.keeps(typed) else []
        context = await self._state.context(tenant_of(principal), typed, as_items(raw["input"]))
        if typed.background is True:
            return await self._queue(ctx, typed, own)
        raw["input"] = await self._files.inline(ctx, context)
        reply = await self._gateway.handler(ctx)
        return reply_response(await self._settle(ctx, reply, own, typed), ctx)

    async def _queue(self, ctx: RequestContext, typed: ResponsesRequest, own: list[dict[str, Any]]) -> Response:
        if self._background is None:
            raise InvalidRequest("'background' needs stored responses, and this gateway keeps none.",
                                 param="background", code="storage_not_configured")
        response = await self._background.submit(ctx, typed, own)
        if typed.stream is True:
            return self._background.follow(ctx.principal, response["id"])
        return Response(orjson.dumps(response), media_type=JSON)

    async def _settle(self, ctx: RequestContext, reply: Reply, own: list[dict[str, Any]],
                      typed: ResponsesRequest) -> Reply:
        if reply.status != 200:
            return reply
        if reply.stream is not None:
            return self._state.kept_stream(reply, ctx, own, typed) if self._state.keeps(typed) else reply
        response = ctx.get(RESPONSE)
        if response is None:  # answered by the cache: a copy of another request's response
            response = fresh_copy(orjson.loads(reply.body), ctx.body)
            reply = replace(reply, body=orjson.dumps(response))
        if self._state.keeps(typed):
            await self._state.keep(ctx, response, own, typed)
        return reply


def fresh_copy(cached: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    """A cached Response as this request's own: new ids, this request's echoes, the cached answer."""
    response = envelope(body, new_id("resp_"), int(time.time()), str(cached.get("model") or body.get("model")))
    response.update({key: cached[key] for key in _RESULT_FIELDS if key in cached})
    response["output"] = [{**item, "id": new_id(str(item.get("id", "item_")).split("_")[0] + "_")}
                          for item in response.get("output") or () if isinstance(item, dict)]
    return response
