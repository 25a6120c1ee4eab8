"""Server-side state of ``POST /v1/responses``, through the store contract (``gateway/kernel/response_state.py``).

Before the chain: ``previous_response_id`` prepends that response's conversation so far
(``ResponseStore.context_items``), ``conversation`` prepends the conversation's items; an unknown id
is a 404 in OpenAI's envelope naming the param, and either one without a configured store a 400.
After it: the final Response is kept (``store``, default true) with the request's own input items, and
both are appended to the conversation; for a stream, before its terminal event goes out, so the next
request can already name it. Without stores ``store`` is accepted and nothing is kept.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import replace
from typing import Any

from gateway.kernel.context import Reply, ReplyStream, RequestContext, tenant_of
from gateway.kernel.errors import GatewayError, InvalidRequest, NotFound
from gateway.kernel.response_state import ConversationStore, ResponseStore
from gateway.kernel.responses import RESPONSE
from gateway.kernel.schemas import ResponsesRequest
from gateway.services.responses_wire.responses_object import conversation_id


class ResponseState:
    def __init__(self, responses: ResponseStore | None = None, conversations: ConversationStore | None = None) -> None:
        self._responses = responses
        self._conversations = conversations

    async def context(self, tenant: str, request: ResponsesRequest,
                      items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The history before this request, then its ``items``; each ``item_reference`` replaced by the item it
        names (from this context, else from anything the tenant keeps); an unknown one is a 404."""
        every = [*await self.history(tenant, request), *items]
        if not any(item.get("type") == "item_reference" for item in every):
            return every
        known = {item["id"]: item for item in every
                 if item.get("type") != "item_reference" and isinstance(item.get("id"), str)}
        return [await self._referred(tenant, item, known) if item.get("type") == "item_reference" else item
                for item in every]

    async def _referred(self, tenant: str, ref: dict[str, Any], known: dict[str, dict[str, Any]]) -> dict[str, Any]:
        item_id = str(ref.get("id"))
        found = known.get(item_id)
        if found is None and self._responses is not None:
            found = await self._responses.find_item(tenant, item_id)
        if found is None or found.get("type") == "item_reference":
            raise NotFound(f"Item with id '{item_id}' not found.", param="input", code="item_not_found")
        return found

    async def history(self, tenant: str, request: ResponsesRequest) -> list[dict[str, Any]]:
        """The items that come before this request's own input (none without a previous id or conversation)."""
        if request.previous_response_id is not None:
            return await self._previous(tenant, request.previous_response_id)
        conversation = conversation_id(request.conversation)
        if request.conversation is not None:
            if conversation is None:
                raise InvalidRequest("'conversation' must be an id or an object with an 'id'.", param="conversation")
            return await self._conversation(tenant, conversation)
        return []

    async def _previous(self, tenant: str, response_id: str) -> list[dict[str, Any]]:
        if self._responses is None:
            raise _not_configured("previous_response_id")
        items = await self._responses.context_items(tenant, response_id)
        if items is None:
            raise NotFound(f"Previous response with id '{response_id}' not found.", param="previous_response_id",
                           code="previous_response_not_found")
        return items

    async def _conversation(self, tenant: str, conversation: str) -> list[dict[str, Any]]:
        if self._conversations is None:
            raise _not_configured("conversation")
        items = await self._conversations.all_items(tenant, conversation)
        if items is None:
            raise NotFound(f"Conversation with id '{conversation}' not found.", param="conversation",
                           code="conversation_not_found")
        return items

    def keeps(self, request: ResponsesRequest) -> bool:
        return (request.store is not False and self._responses is not None) or request.conversation is not None

    async def keep(self, ctx: RequestContext, response: dict[str, Any], own: list[dict[str, Any]],
                   request: ResponsesRequest) -> None:
        tenant = tenant_of(ctx.principal)
        conversation = conversation_id(request.conversation)
        if request.store is not False and self._responses is not None:
            await self._responses.put(tenant, response, own, previous_response_id=request.previous_response_id,
                                      conversation_id=conversation)
        if conversation is not None and self._conversations is not None:
            await self._conversations.append(tenant, conversation, [*own, *response.get("output", ())])

    def kept_stream(self, reply: Reply, ctx: RequestContext, own: list[dict[str, Any]],
                    request: ResponsesRequest) -> Reply:
        """``reply``'s stream, keeping the final Response before the event that carries it goes out."""
        return replace(reply, stream=self._relay(reply.stream, ctx, own, request)) if reply.stream else reply

    async def _relay(self, chunks: ReplyStream, ctx: RequestContext, own: list[dict[str, Any]],
                     request: ResponsesRequest) -> AsyncGenerator[bytes, None]:
        kept = False
        try:
            async for chunk in chunks:
                response = ctx.get(RESPONSE) if not kept else None
                if response is not None:
                    kept = True
                    try:
                        await self.keep(ctx, response, own, request)
                    except GatewayError as err:
                        yield b"data: " + err.body() + b"\n\n"
                        return
                yield chunk
        finally:
            await chunks.aclose()


def _not_configured(param: str) -> InvalidRequest:
    return InvalidRequest(f"'{param}' needs stored responses, and this gateway keeps none (no response store "
                          "is configured).", param=param, code="storage_not_configured")
