"""SQL for files, stores and store files. Every statement is scoped by tenant."""

from __future__ import annotations

import time
from typing import Any

from psycopg import AsyncConnection
from psycopg.types.json import Jsonb

from gateway.services.vectorstores.objects import StoreRow

_STORE_COLUMNS = "id, tenant, name, metadata, dimensions, created_at, last_active_at, version, indexed"
_VF_COLUMNS = "store_id, file_id, status, usage_bytes, created_at, chunking, attributes, last_error"


def now() -> int:
    return int(time.time())


async def insert_file(conn: AsyncConnection, row: tuple[str, str, str, str, bytes]) -> tuple[Any, ...]:
    file_id, tenant, filename, purpose, data = row
    created = now()
    await conn.execute(
        "INSERT INTO llmops_files (id, tenant, filename, purpose, bytes, created_at, content) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s)", (file_id, tenant, filename, purpose, len(data), created, data))
    return (file_id, filename, purpose, len(data), created)


async def get_file(conn: AsyncConnection, tenant: str, file_id: str) -> tuple[Any, ...] | None:
    cur = await conn.execute("SELECT id, filename, purpose, bytes, created_at FROM llmops_files "
                             "WHERE tenant = %s AND id = %s", (tenant, file_id))
    return await cur.fetchone()


async def list_files(conn: AsyncConnection, tenant: str, limit: int) -> list[tuple[Any, ...]]:
    cur = await conn.execute("SELECT id, filename, purpose, bytes, created_at FROM llmops_files "
                             "WHERE tenant = %s ORDER BY created_at DESC, id LIMIT %s", (tenant, limit))
    return await cur.fetchall()


async def detach_file(conn: AsyncConnection, tenant: str, store_id: str, file_id: str) -> bool:
    """Remove a file and its chunks from one store; the store's version moves (cache keys change)."""
    async with conn.transaction():
        cur = await conn.execute("DELETE FROM llmops_vector_store_files WHERE tenant = %s AND store_id = %s "
                                 "AND file_id = %s", (tenant, store_id, file_id))
        if cur.rowcount == 0:
            return False
        await conn.execute("DELETE FROM llmops_chunks WHERE tenant = %s AND store_id = %s AND file_id = %s",
                           (tenant, store_id, file_id))
        await conn.execute("UPDATE llmops_vector_stores SET version = version + 1, last_active_at = %s "
                           "WHERE id = %s", (now(), store_id))
    return True


async def delete_file(conn: AsyncConnection, tenant: str, file_id: str) -> bool:
    """Delete a file everywhere: its chunks in every store of the tenant, then the file itself."""
    async with conn.transaction():
        cur = await conn.execute("DELETE FROM llmops_vector_store_files WHERE tenant = %s AND file_id = %s "
                                 "RETURNING store_id", (tenant, file_id))
        stores = [row[0] for row in await cur.fetchall()]
        await conn.execute("DELETE FROM llmops_chunks WHERE tenant = %s AND file_id = %s", (tenant, file_id))
        await conn.execute("UPDATE llmops_vector_stores SET version = version + 1, last_active_at = %s "
                           "WHERE id = ANY(%s)", (now(), stores))
        gone = await conn.execute("DELETE FROM llmops_files WHERE tenant = %s AND id = %s", (tenant, file_id))
    return gone.rowcount > 0


async def file_content(conn: AsyncConnection, tenant: str, file_id: str) -> tuple[str, bytes] | None:
    cur = await conn.execute("SELECT filename, content FROM llmops_files WHERE tenant = %s AND id = %s",
                             (tenant, file_id))
    row = await cur.fetchone()
    return (row[0], bytes(row[1])) if row else None


async def file_slice(conn: AsyncConnection, tenant: str, file_id: str, start: int, end: int) -> bytes | None:
    """Bytes [start, end) of a file, read in the database (a batch chunk's lines, not the whole file)."""
    cur = await conn.execute("SELECT substring(content FROM %s FOR %s) FROM llmops_files "
                             "WHERE tenant = %s AND id = %s", (start + 1, end - start, tenant, file_id))
    row = await cur.fetchone()
    return bytes(row[0]) if row else None


async def insert_store(conn: AsyncConnection, store: StoreRow) -> None:
    await conn.execute(
        f"INSERT INTO llmops_vector_stores ({_STORE_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (store.id, store.tenant, store.name, Jsonb(store.metadata), store.dimensions, store.created_at,
         store.last_active_at, store.version, store.indexed))


async def get_store(conn: AsyncConnection, tenant: str, store_id: str) -> StoreRow | None:
    cur = await conn.execute(f"SELECT {_STORE_COLUMNS} FROM llmops_vector_stores WHERE tenant = %s AND id = %s",
                             (tenant, store_id))
    row = await cur.fetchone()
    return StoreRow(*row) if row else None


async def list_stores(conn: AsyncConnection, tenant: str, limit: int, after: str | None,
                      descending: bool) -> list[StoreRow]:
    order = "DESC" if descending else "ASC"
    cmp = "<" if descending else ">"
    cursor = ""
    params: list[Any] = [tenant]
    if after:
        cursor = (f"AND (created_at, id) {cmp} (SELECT created_at, id FROM llmops_vector_stores "
                  "WHERE tenant = %s AND id = %s)")
        params += [tenant, after]
    cur = await conn.execute(
        f"SELECT {_STORE_COLUMNS} FROM llmops_vector_stores WHERE tenant = %s {cursor} "
        f"ORDER BY created_at {order}, id {order} LIMIT %s", (*params, limit))
    return [StoreRow(*r) for r in await cur.fetchall()]


async def store_stats(conn: AsyncConnection, store_id: str) -> tuple[dict[str, int], int]:
    cur = await conn.execute("SELECT status, count(*), coalesce(sum(usage_bytes), 0) "
                             "FROM llmops_vector_store_files WHERE store_id = %s GROUP BY status", (store_id,))
    rows = await cur.fetchall()
    return {r[0]: int(r[1]) for r in rows}, sum(int(r[2]) for r in rows)


async def delete_store(conn: AsyncConnection, tenant: str, store_id: str) -> bool:
    cur = await conn.execute("DELETE FROM llmops_vector_stores WHERE tenant = %s AND id = %s", (tenant, store_id))
    return cur.rowcount > 0


async def upsert_store_file(conn: AsyncConnection, tenant: str, store_id: str, file_id: str,
                            chunking: dict[str, Any], attributes: dict[str, Any] | None) -> tuple[Any, ...]:
    cur = await conn.execute(
        "INSERT INTO llmops_vector_store_files (store_id, file_id, tenant, status, created_at, chunking, attributes)"
        " VALUES (%s, %s, %s, 'in_progress', %s, %s, %s) ON CONFLICT (store_id, file_id) DO UPDATE SET "
        "status = 'in_progress', chunking = EXCLUDED.chunking, attributes = EXCLUDED.attributes, last_error = NULL "
        f"RETURNING {_VF_COLUMNS}",
        (store_id, file_id, tenant, now(), Jsonb(chunking), Jsonb(attributes) if attributes is not None else None))
    row = await cur.fetchone()
    assert row is not None
    return row


async def get_store_file(conn: AsyncConnection, tenant: str, store_id: str, file_id: str) -> tuple[Any, ...] | None:
    cur = await conn.execute(f"SELECT {_VF_COLUMNS} FROM llmops_vector_store_files "
                             "WHERE tenant = %s AND store_id = %s AND file_id = %s", (tenant, store_id, file_id))
    return await cur.fetchone()


async def list_store_files(conn: AsyncConnection, tenant: str, store_id: str, limit: int) -> list[tuple[Any, ...]]:
    cur = await conn.execute(f"SELECT {_VF_COLUMNS} FROM llmops_vector_store_files WHERE tenant = %s "
                             "AND store_id = %s ORDER BY created_at, file_id LIMIT %s", (tenant, store_id, limit))
    return await cur.fetchall()


async def finish_store_file(conn: AsyncConnection, store_id: str, file_id: str, usage: int,
                            error: dict[str, str] | None) -> None:
    status = "failed" if error else "completed"
    await conn.execute("UPDATE llmops_vector_store_files SET status = %s, usage_bytes = %s, last_error = %s "
                       "WHERE store_id = %s AND file_id = %s",
                       (status, usage, Jsonb(error) if error else None, store_id, file_id))
    await conn.execute("UPDATE llmops_vector_stores SET version = version + 1, last_active_at = %s "
                       "WHERE id = %s", (now(), store_id))


async def versions(conn: AsyncConnection, tenant: str, store_ids: list[str]) -> dict[str, int]:
    cur = await conn.execute("SELECT id, version FROM llmops_vector_stores WHERE tenant = %s AND id = ANY(%s)",
                             (tenant, store_ids))
    return {r[0]: int(r[1]) for r in await cur.fetchall()}
