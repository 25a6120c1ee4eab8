"""HTTP surface of stored responses: retrieve (JSON, or a background response's stream resumed with
``stream=true&starting_after=N``), delete, input items, cancel. ``POST /v1/responses`` is elsewhere.

A resumed stream replays the stored events numbered above ``starting_after``, then follows new ones
(polling the store every ``background.poll_interval_s``) until a final event (``response.completed``,
``failed``, ``incomplete``, ``error``), or until the response is final with nothing more to send
(cancelled), or deleted.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from gateway.http import validate as v
from gateway.http.paging import list_query, query_of
from gateway.http.responses import JSON
from gateway.kernel.context import Principal, tenant_of
from gateway.kernel.errors import GatewayError, InvalidRequest
from gateway.kernel.listing import list_page
from gateway.kernel.schemas import ResponseQuery
from gateway.services.responses.queue import FINAL_EVENTS
from gateway.services.responses.responses import TERMINAL
from gateway.services.responses.state import ResponseState

_KEEPALIVE_S = 15.0

RESPONSE_ID = v.PathId("response_id", "Response")


class StoredResponsesApi:
    """Handlers only: ``gateway/app.py`` declares each route with its door."""

    def __init__(self, state: ResponseState) -> None:
        self._state = state

    async def get(self, request: Request, principal: Principal | None) -> Response:
        response_id, tenant = RESPONSE_ID.of(request), tenant_of(principal)
        query = query_of(request.query_params, ResponseQuery)
        stream = query.stream is True
        after = query.starting_after if query.starting_after is not None else -1
        stored = await self._state.responses.get(tenant, response_id)
        if stored is None:
            raise RESPONSE_ID.missing(response_id)
        if not stream:
            return Response(orjson.dumps(stored.response), media_type=JSON)
        if stored.response.get("background") is not True:
            raise InvalidRequest("Only responses created with background can be streamed again.", param="stream")
        return event_stream(self._state, tenant, response_id, after)

    async def delete(self, request: Request, principal: Principal | None) -> Any:
        response_id = RESPONSE_ID.of(request)
        if not await self._state.responses.delete(tenant_of(principal), response_id):
            raise RESPONSE_ID.missing(response_id)
        return {"id": response_id, "object": "response", "deleted": True}

    async def input_items(self, request: Request, principal: Principal | None) -> Any:
        response_id = RESPONSE_ID.of(request)
        query = list_query(request.query_params)
        page = await self._state.responses.input_items(tenant_of(principal), response_id, after=query.after,
                                                       limit=query.limit, order=query.order)
        if page is None:
            raise RESPONSE_ID.missing(response_id)
        return list_page(page.items, page.has_more)

    async def cancel(self, request: Request, principal: Principal | None) -> Any:
        response_id = RESPONSE_ID.of(request)
        found = await self._state.responses.cancel(tenant_of(principal), response_id)
        if found is None:
            raise RESPONSE_ID.missing(response_id)
        response, outcome = found
        if outcome == "not_background":
            raise InvalidRequest("Only responses created with background can be cancelled.", param="response_id")
        return response


def event_stream(state: ResponseState, tenant: str, response_id: str, after: int) -> StreamingResponse:
    """SSE of a background response's stored events numbered above ``after``, then of new ones."""
    return StreamingResponse(_follow(state, tenant, response_id, after), media_type="text/event-stream",
                             headers={"cache-control": "no-cache", "x-accel-buffering": "no"})


async def _follow(state: ResponseState, tenant: str, response_id: str, after: int) -> AsyncIterator[bytes]:
    poll_s, idle = state.settings.background.poll_interval_s, 0.0
    while True:
        try:
            found = await state.queue.events_after(tenant, response_id, after)
        except GatewayError as err:
            yield _sse({"type": "error", "code": err.code, "message": err.message, "param": None,
                        "sequence_number": after + 1})
            return
        if found is None:
            return
        status, events = found
        for event in events:
            yield _sse(event)
            after = int(event.get("sequence_number", after + 1))
            if event.get("type") in FINAL_EVENTS:
                return
        if events:
            idle = 0.0
            continue
        if status in TERMINAL:
            return
        await asyncio.sleep(poll_s)
        idle += poll_s
        if idle >= _KEEPALIVE_S:
            idle = 0.0
            yield b": keep-alive\n\n"


def _sse(event: dict[str, Any]) -> bytes:
    kind = "".join(str(event.get("type", "message")).split())
    return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(event) + b"\n\n"
