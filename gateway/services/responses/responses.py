"""``ResponseStore`` on PostgreSQL (the contract: ``gateway/kernel/response_state.py``).

A ``previous_response_id`` chain is read back in one recursive query, at most ``max_depth``
ancestors deep. A deleted ancestor ends the chain: its items, and those of every older turn, are
no longer part of any context (deletion is honoured; the later turns still answer). Whether the
*direct* previous id exists is the caller's question (``get``): OpenAI answers 404 for it.
"""

from __future__ import annotations

import time
from typing import Any, Literal

from gateway.kernel.response_state import Order, Page, StoredResponse
from gateway.services.responses.pool import Connection, StatePool
from gateway.services.responses.records import jsonb, loads, with_ids

Cancelled = Literal["cancelled", "final", "not_background"]
TERMINAL = frozenset({"completed", "failed", "cancelled", "incomplete"})

_CHAIN = """
WITH RECURSIVE chain (id, previous, depth) AS (
    SELECT id, previous_response_id, 0 FROM llmops_responses WHERE tenant = %(tenant)s AND id = %(id)s
  UNION ALL
    SELECT r.id, r.previous_response_id, c.depth + 1
    FROM chain c JOIN llmops_responses r ON r.tenant = %(tenant)s AND r.id = c.previous
    WHERE c.depth < %(depth)s
)
SELECT c.depth, -1 AS part, 0 AS seq, NULL::text FROM chain c WHERE c.depth = 0
UNION ALL
SELECT c.depth, 0, i.seq, i.item::text
FROM chain c JOIN llmops_response_items i ON i.tenant = %(tenant)s AND i.response_id = c.id
UNION ALL
SELECT c.depth, 1, o.n::integer, o.item::text
FROM chain c JOIN llmops_responses r ON r.tenant = %(tenant)s AND r.id = c.id,
     jsonb_array_elements(CASE jsonb_typeof(r.response -> 'output') WHEN 'array' THEN r.response -> 'output'
                               ELSE '[]'::jsonb END) WITH ORDINALITY AS o (item, n)
ORDER BY 1 DESC, 2, 3
"""

_FIND_ITEM = """
(SELECT item::text FROM llmops_response_items WHERE tenant = %(tenant)s AND item_id = %(id)s LIMIT 1)
UNION ALL
(SELECT item::text FROM llmops_conversation_items WHERE tenant = %(tenant)s AND item_id = %(id)s LIMIT 1)
UNION ALL
(SELECT o.item::text FROM llmops_responses r, jsonb_array_elements(r.response -> 'output') AS o (item)
 WHERE r.tenant = %(tenant)s AND r.response -> 'output' @> %(probe)s AND o.item ->> 'id' = %(id)s LIMIT 1)
LIMIT 1
"""

_PAGE = """
SELECT (SELECT coalesce(jsonb_agg(p.item ORDER BY p.seq {order}), '[]'::jsonb)::text FROM (
    SELECT i.seq, i.item FROM llmops_response_items i
    WHERE i.tenant = %(tenant)s AND i.response_id = %(id)s {cursor}
    ORDER BY i.seq {order} LIMIT %(limit)s) p)
FROM llmops_responses WHERE tenant = %(tenant)s AND id = %(id)s
"""
_CURSOR = {
    "asc": "AND i.seq > (SELECT min(seq) FROM llmops_response_items WHERE tenant = %(tenant)s "
           "AND response_id = %(id)s AND item_id = %(after)s)",
    "desc": "AND i.seq < (SELECT max(seq) FROM llmops_response_items WHERE tenant = %(tenant)s "
            "AND response_id = %(id)s AND item_id = %(after)s)",
}


async def insert(conn: Connection, tenant: str, response: dict[str, Any], input_items: list[dict[str, Any]],
                 previous_response_id: str | None, conversation_id: str | None) -> None:
    """Insert a response with its input items, or replace the object of one already stored (its items stay).
    Retention counts from when this gateway stored it, never from a time the body carries (a backend's
    clock, a client's)."""
    created_at = int(time.time())
    cur = await conn.execute(
        "INSERT INTO llmops_responses (tenant, id, previous_response_id, conversation_id, created_at, response) "
        "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (tenant, id) DO UPDATE SET response = EXCLUDED.response "
        "RETURNING (xmax = 0)",
        (tenant, response["id"], previous_response_id, conversation_id, created_at, jsonb(response)))
    row = await cur.fetchone()
    if row is not None and row[0] and input_items:
        await conn.execute(
            "INSERT INTO llmops_response_items (tenant, response_id, seq, item_id, item) "
            "SELECT %s, %s, (n - 1)::integer, e ->> 'id', e FROM jsonb_array_elements(%s) WITH ORDINALITY AS t (e, n)",
            (tenant, response["id"], jsonb(with_ids(input_items))))


class PostgresResponseStore:
    def __init__(self, pool: StatePool, max_depth: int) -> None:
        self._pool = pool
        self._max_depth = max_depth

    async def put(self, tenant: str, response: dict[str, Any], input_items: list[dict[str, Any]], *,
                  previous_response_id: str | None = None, conversation_id: str | None = None) -> None:
        async with self._pool.transaction() as conn:
            await insert(conn, tenant, response, input_items, previous_response_id, conversation_id)

    async def update(self, tenant: str, response: dict[str, Any]) -> bool:
        async with self._pool.connection() as conn:
            cur = await conn.execute("UPDATE llmops_responses SET response = %s WHERE tenant = %s AND id = %s",
                                     (jsonb(response), tenant, response["id"]))
            return cur.rowcount > 0

    async def get(self, tenant: str, response_id: str) -> StoredResponse | None:
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                "SELECT r.response::text, r.previous_response_id, r.conversation_id, r.created_at, "
                "(SELECT coalesce(jsonb_agg(i.item ORDER BY i.seq), '[]'::jsonb)::text FROM llmops_response_items i "
                " WHERE i.tenant = r.tenant AND i.response_id = r.id) "
                "FROM llmops_responses r WHERE r.tenant = %s AND r.id = %s", (tenant, response_id))
            row = await cur.fetchone()
        if row is None:
            return None
        return StoredResponse(response_id, tenant, loads(row[0]), loads(row[4]), row[1], row[2], int(row[3]))

    async def context_items(self, tenant: str, response_id: str) -> list[dict[str, Any]] | None:
        async with self._pool.connection() as conn:
            cur = await conn.execute(_CHAIN, {"tenant": tenant, "id": response_id, "depth": self._max_depth})
            rows = await cur.fetchall()
        if not rows:
            return None
        return [loads(r[3]) for r in rows if r[1] >= 0]

    async def find_item(self, tenant: str, item_id: str) -> dict[str, Any] | None:
        async with self._pool.connection() as conn:
            cur = await conn.execute(_FIND_ITEM, {"tenant": tenant, "id": item_id, "probe": jsonb([{"id": item_id}])})
            row = await cur.fetchone()
        return loads(row[0]) if row is not None else None

    async def input_items(self, tenant: str, response_id: str, *, after: str | None, limit: int,
                          order: Order) -> Page | None:
        direction = "ASC" if order == "asc" else "DESC"
        sql = _PAGE.format(order=direction, cursor=_CURSOR[order] if after is not None else "")
        params = {"tenant": tenant, "id": response_id, "after": after, "limit": limit + 1}
        async with self._pool.connection() as conn:
            row = await (await conn.execute(sql.encode(), params)).fetchone()
        if row is None:
            return None
        items: list[dict[str, Any]] = loads(row[0])
        return Page(items[:limit], len(items) > limit)

    async def delete(self, tenant: str, response_id: str) -> bool:
        async with self._pool.connection() as conn:
            cur = await conn.execute("DELETE FROM llmops_responses WHERE tenant = %s AND id = %s",
                                     (tenant, response_id))
            return cur.rowcount > 0

    async def cancel(self, tenant: str, response_id: str) -> tuple[dict[str, Any], Cancelled] | None:
        """Mark a queued or running background response ``cancelled`` (its runner sees it at its next
        lease renewal and stops). A final one is returned as it is; None when the id is unknown."""
        async with self._pool.transaction() as conn:
            cur = await conn.execute("SELECT response::text FROM llmops_responses WHERE tenant = %s AND id = %s "
                                     "FOR UPDATE", (tenant, response_id))
            row = await cur.fetchone()
            if row is None:
                return None
            response: dict[str, Any] = loads(row[0])
            if response.get("background") is not True:
                return response, "not_background"
            if response.get("status") in TERMINAL:
                return response, "final"
            response = {**response, "status": "cancelled"}
            await conn.execute("UPDATE llmops_responses SET response = %s WHERE tenant = %s AND id = %s",
                               (jsonb(response), tenant, response_id))
            await conn.execute("UPDATE llmops_response_jobs SET state = 'cancelled', owner = NULL, lease_until = NULL "
                               "WHERE tenant = %s AND response_id = %s AND state IN ('queued', 'running')",
                               (tenant, response_id))
        return response, "cancelled"
