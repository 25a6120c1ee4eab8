"""``POST /v1/responses`` with ``background: true``: the Response is stored ``queued`` and its job queued
in one transaction, with what its run needs (``worker.py``, in any replica, after any restart): the
request body as sent, the caller (the fields of its ``Principal``: never a key, a token or an
``Authorization`` header) and the few request headers the chain reads. With ``stream: true`` the
answer follows the response's stored events from the first one, as ``GET ?stream=true`` does.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from starlette.responses import Response

from gateway.http.stored_responses import event_stream
from gateway.kernel.context import Principal, RequestContext, tenant_of
from gateway.kernel.responses import new_id
from gateway.kernel.schemas import ResponsesRequest
from gateway.services.responses.state import ResponseState
from gateway.services.responses_wire.responses_object import conversation_id, envelope

KEPT_HEADERS = ("cache-control",)  # and the routing's region header


class BackgroundResponses:
    def __init__(self, state: ResponseState, region_header: str) -> None:
        self._state = state
        self._headers = (*KEPT_HEADERS, region_header.lower())

    async def submit(self, ctx: RequestContext, request: ResponsesRequest,
                     own: list[dict[str, Any]]) -> dict[str, Any]:
        """Store and queue ``ctx``'s request (its model resolved, its history checked); the queued Response."""
        response = envelope(ctx.body, new_id("resp_"), int(time.time()), ctx.model)
        response["status"] = "queued"
        job = {"request_id": ctx.request_id, "body": ctx.body, "principal": caller_record(ctx.principal),
               "headers": {name: ctx.headers[name] for name in self._headers if name in ctx.headers}}
        await self._state.queue.submit(tenant_of(ctx.principal), response, own,
                                       previous_response_id=request.previous_response_id,
                                       conversation_id=conversation_id(request.conversation), request=job)
        self._state.wake()
        return response

    def follow(self, principal: Principal | None, response_id: str) -> Response:
        return event_stream(self._state, tenant_of(principal), response_id, -1)


def caller_record(principal: Principal | None) -> dict[str, Any] | None:
    """The caller as JSON: who it is and its key's grants (its claims too, which the policy reads)."""
    if principal is None:
        return None
    return {"tenant": principal.tenant, "key_id": principal.key_id, "roles": list(principal.roles),
            "claims": dict(principal.claims), "metadata": dict(principal.metadata), "models": list(principal.models),
            "rpm": principal.rpm, "tpm": principal.tpm, "budget_usd": principal.budget_usd}


def caller_of(record: Mapping[str, Any] | None) -> Principal | None:
    if record is None:
        return None
    return Principal(str(record["tenant"]), str(record["key_id"]), tuple(record.get("roles") or ()),
                     dict(record.get("claims") or {}), dict(record.get("metadata") or {}),
                     tuple(record.get("models") or ()), record.get("rpm"), record.get("tpm"),
                     record.get("budget_usd"))
