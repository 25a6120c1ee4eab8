"""Conversations on PostgreSQL: ``ConversationStore`` (what ``POST /v1/responses`` needs) and the rest
of the Conversations API.

An item is in a conversation once: appending an item whose id the conversation already holds leaves
the stored one (a retried append is harmless). Items are kept in the order they were appended.
Deleting a conversation deletes its items; responses that used it stay.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from gateway.kernel.response_state import Order, Page
from gateway.services.responses.pool import Connection, StatePool
from gateway.services.responses.records import jsonb, loads, new_id, with_ids

_COLUMNS = "id, metadata::text, created_at"
_APPEND = ("INSERT INTO llmops_conversation_items (tenant, conversation_id, item_id, item) "
           "SELECT %s, %s, e ->> 'id', e FROM jsonb_array_elements(%s) WITH ORDINALITY AS t (e, n) ORDER BY n "
           "ON CONFLICT (tenant, conversation_id, item_id) DO NOTHING")
_PAGE = """
SELECT c.id, c.metadata::text, c.created_at,
       (SELECT coalesce(jsonb_agg(p.item ORDER BY p.seq {order}), '[]'::jsonb)::text FROM (
           SELECT i.seq, i.item FROM llmops_conversation_items i
           WHERE i.tenant = c.tenant AND i.conversation_id = c.id {cursor}
           ORDER BY i.seq {order} LIMIT %(limit)s) p)
FROM llmops_conversations c WHERE c.tenant = %(tenant)s AND c.id = %(id)s
"""
_CURSOR = {
    "asc": "AND i.seq > (SELECT seq FROM llmops_conversation_items WHERE tenant = c.tenant "
           "AND conversation_id = c.id AND item_id = %(after)s)",
    "desc": "AND i.seq < (SELECT seq FROM llmops_conversation_items WHERE tenant = c.tenant "
            "AND conversation_id = c.id AND item_id = %(after)s)",
}


@dataclass(frozen=True, slots=True)
class Conversation:
    id: str
    metadata: dict[str, str]
    created_at: int

    def as_object(self) -> dict[str, Any]:
        return {"id": self.id, "object": "conversation", "created_at": self.created_at, "metadata": self.metadata}


def _row(row: tuple[Any, ...] | None) -> Conversation | None:
    return Conversation(row[0], loads(row[1]), int(row[2])) if row is not None else None


class PostgresConversationStore:
    def __init__(self, pool: StatePool) -> None:
        self._pool = pool

    async def create(self, tenant: str, metadata: dict[str, str], items: list[dict[str, Any]]) -> Conversation:
        conversation = Conversation(new_id("conv"), metadata, int(time.time()))
        async with self._pool.transaction() as conn:
            await conn.execute("INSERT INTO llmops_conversations (tenant, id, metadata, created_at, updated_at) "
                               "VALUES (%s, %s, %s, %s, %s)", (tenant, conversation.id, jsonb(metadata),
                                                               conversation.created_at, conversation.created_at))
            await _append(conn, tenant, conversation.id, items)
        return conversation

    async def get(self, tenant: str, conversation_id: str) -> Conversation | None:
        async with self._pool.connection() as conn:
            cur = await conn.execute(f"SELECT {_COLUMNS} FROM llmops_conversations WHERE tenant = %s AND id = %s",
                                     (tenant, conversation_id))
            return _row(await cur.fetchone())

    async def update(self, tenant: str, conversation_id: str, metadata: dict[str, str]) -> Conversation | None:
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                f"UPDATE llmops_conversations SET metadata = %s, updated_at = %s WHERE tenant = %s AND id = %s "
                f"RETURNING {_COLUMNS}", (jsonb(metadata), int(time.time()), tenant, conversation_id))
            return _row(await cur.fetchone())

    async def delete(self, tenant: str, conversation_id: str) -> bool:
        async with self._pool.connection() as conn:
            cur = await conn.execute("DELETE FROM llmops_conversations WHERE tenant = %s AND id = %s",
                                     (tenant, conversation_id))
            return cur.rowcount > 0

    async def all_items(self, tenant: str, conversation_id: str) -> list[dict[str, Any]] | None:
        found = await self.items(tenant, conversation_id, after=None, limit=None, order="asc")
        return None if found is None else found[1].items

    async def append(self, tenant: str, conversation_id: str, items: list[dict[str, Any]]) -> bool:
        async with self._pool.transaction() as conn:
            if not await _touch(conn, tenant, conversation_id):
                return False
            await _append(conn, tenant, conversation_id, items)
        return True

    async def add(self, tenant: str, conversation_id: str, items: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
        """Append ``items`` (each with an id); the items as stored, None when the conversation is unknown."""
        items = with_ids(items)
        return items if await self.append(tenant, conversation_id, items) else None

    async def items(self, tenant: str, conversation_id: str, *, after: str | None, limit: int | None,
                    order: Order) -> tuple[Conversation, Page] | None:
        direction = "ASC" if order == "asc" else "DESC"
        sql = _PAGE.format(order=direction, cursor=_CURSOR[order] if after is not None else "")
        params = {"tenant": tenant, "id": conversation_id, "after": after,
                  "limit": limit + 1 if limit is not None else None}
        async with self._pool.connection() as conn:
            row = await (await conn.execute(sql.encode(), params)).fetchone()
        conversation = _row(row)
        if row is None or conversation is None:
            return None
        items: list[dict[str, Any]] = loads(row[3])
        more = limit is not None and len(items) > limit
        return conversation, Page(items[:limit] if limit is not None else items, more)

    async def item(self, tenant: str, conversation_id: str,
                   item_id: str) -> tuple[Conversation, dict[str, Any] | None] | None:
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                "SELECT c.id, c.metadata::text, c.created_at, i.item::text FROM llmops_conversations c "
                "LEFT JOIN llmops_conversation_items i ON i.tenant = c.tenant AND i.conversation_id = c.id "
                "AND i.item_id = %s WHERE c.tenant = %s AND c.id = %s", (item_id, tenant, conversation_id))
            row = await cur.fetchone()
        conversation = _row(row)
        if row is None or conversation is None:
            return None
        return conversation, loads(row[3])

    async def delete_item(self, tenant: str, conversation_id: str, item_id: str) -> tuple[Conversation, bool] | None:
        async with self._pool.transaction() as conn:
            cur = await conn.execute(
                f"UPDATE llmops_conversations SET updated_at = %s WHERE tenant = %s AND id = %s RETURNING {_COLUMNS}",
                (int(time.time()), tenant, conversation_id))
            conversation = _row(await cur.fetchone())
            if conversation is None:
                return None
            gone = await conn.execute("DELETE FROM llmops_conversation_items WHERE tenant = %s "
                                      "AND conversation_id = %s AND item_id = %s", (tenant, conversation_id, item_id))
        return conversation, gone.rowcount > 0


async def _touch(conn: Connection, tenant: str, conversation_id: str) -> bool:
    """Mark the conversation active; its row stays locked until the transaction ends, so appends to
    one conversation are serialised and its items keep their order."""
    cur = await conn.execute("UPDATE llmops_conversations SET updated_at = %s WHERE tenant = %s AND id = %s",
                             (int(time.time()), tenant, conversation_id))
    return cur.rowcount > 0


async def _append(conn: Connection, tenant: str, conversation_id: str, items: list[dict[str, Any]]) -> None:
    if items:
        await conn.execute(_APPEND, (tenant, conversation_id, jsonb(with_ids(items))))
