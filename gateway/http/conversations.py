"""HTTP surface of OpenAI's Conversations API: conversations (create with items, retrieve, update
metadata, delete) and their items (add up to 20, list, retrieve, delete). Another tenant's ids are 404s."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from gateway.http import validate as v
from gateway.http.items import input_items
from gateway.http.paging import list_query, query_of
from gateway.http.parsing import parse_object
from gateway.kernel.context import Principal, tenant_of
from gateway.kernel.errors import InvalidRequest
from gateway.kernel.listing import list_page
from gateway.kernel.schemas import IncludeQuery
from gateway.services.responses.conversations import Conversation
from gateway.services.responses.state import ResponseState

CONVERSATION_ID = v.PathId("conversation_id", "Conversation")
ITEM_ID = v.PathId("item_id", "Item")


class ConversationsApi:
    """Handlers only: ``gateway/app.py`` declares each route with its door."""

    def __init__(self, state: ResponseState) -> None:
        self._store = state.conversations

    async def create(self, request: Request, principal: Principal | None) -> Any:
        raw = await request.body()
        body = parse_object(raw) if raw.strip() else {}
        items = input_items(body.get("items"))
        conversation = await self._store.create(tenant_of(principal), v.metadata(body.get("metadata")), items)
        return conversation.as_object()

    async def get(self, request: Request, principal: Principal | None) -> Any:
        return (await self._conversation(request, principal)).as_object()

    async def update(self, request: Request, principal: Principal | None) -> Any:
        conversation_id = CONVERSATION_ID.of(request)
        body = parse_object(await request.body())
        if "metadata" not in body:
            raise InvalidRequest("Missing required parameter: 'metadata'.", param="metadata")
        found = await self._store.update(tenant_of(principal), conversation_id, v.metadata(body["metadata"]))
        if found is None:
            raise CONVERSATION_ID.missing(conversation_id)
        return found.as_object()

    async def delete(self, request: Request, principal: Principal | None) -> Any:
        conversation_id = CONVERSATION_ID.of(request)
        if not await self._store.delete(tenant_of(principal), conversation_id):
            raise CONVERSATION_ID.missing(conversation_id)
        return {"id": conversation_id, "object": "conversation.deleted", "deleted": True}

    async def add_items(self, request: Request, principal: Principal | None) -> Any:
        conversation_id = CONVERSATION_ID.of(request)
        query_of(request.query_params, IncludeQuery)
        items = input_items(parse_object(await request.body()).get("items"), required=True)
        added = await self._store.add(tenant_of(principal), conversation_id, items)
        if added is None:
            raise CONVERSATION_ID.missing(conversation_id)
        return list_page(added, False)

    async def list_items(self, request: Request, principal: Principal | None) -> Any:
        conversation_id = CONVERSATION_ID.of(request)
        query = list_query(request.query_params)
        found = await self._store.items(tenant_of(principal), conversation_id, after=query.after,
                                        limit=query.limit, order=query.order)
        if found is None:
            raise CONVERSATION_ID.missing(conversation_id)
        return list_page(found[1].items, found[1].has_more)

    async def get_item(self, request: Request, principal: Principal | None) -> Any:
        conversation_id, item_id = CONVERSATION_ID.of(request), ITEM_ID.of(request)
        query_of(request.query_params, IncludeQuery)
        found = await self._store.item(tenant_of(principal), conversation_id, item_id)
        if found is None:
            raise CONVERSATION_ID.missing(conversation_id)
        if found[1] is None:
            raise ITEM_ID.missing(item_id)
        return found[1]

    async def delete_item(self, request: Request, principal: Principal | None) -> Any:
        conversation_id, item_id = CONVERSATION_ID.of(request), ITEM_ID.of(request)
        found = await self._store.delete_item(tenant_of(principal), conversation_id, item_id)
        if found is None:
            raise CONVERSATION_ID.missing(conversation_id)
        if not found[1]:
            raise ITEM_ID.missing(item_id)
        return found[0].as_object()

    async def _conversation(self, request: Request, principal: Principal | None) -> Conversation:
        conversation_id = CONVERSATION_ID.of(request)
        found = await self._store.get(tenant_of(principal), conversation_id)
        if found is None:
            raise CONVERSATION_ID.missing(conversation_id)
        return found
