"""Nearest-chunk search within one store.

pgvector 0.6.2 has no iterative index scans: an ANN scan followed by a filter can return fewer
than k rows. So a store never shares an HNSW graph with another store (or tenant): once it holds
``exact_below`` chunks it gets its own partial index (``WHERE store_id = '<id>'``); smaller stores
are searched exactly. Attribute filters over-fetch from the index and fall back to an exact scan
when too few rows survive.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
from pgvector import Vector as PgVector
from psycopg import AsyncConnection, sql

from gateway.services.vectorstores.filters import filter_sql
from gateway.services.vectorstores.objects import Hit, StoreRow

_OVERFETCH = 8
_TRUE = sql.SQL("true")


def vector_text(vector: npt.NDArray[np.float32]) -> str:
    """pgvector's text form of ``vector`` (pgvector-python's encoder), for ``%s::vector`` and COPY."""
    text: str = PgVector(vector).to_text()
    return text


def index_name(store_id: str) -> sql.Identifier:
    return sql.Identifier(f"llmops_chunks_hnsw_{store_id[3:]}")


def _typed(store: StoreRow) -> sql.Composable:
    return sql.SQL("vector({})").format(sql.Literal(store.dimensions))


def tuned_session(ef_search: int) -> str:
    """Session settings of a connection kept for unfiltered ANN searches (see ``search_tuned``)."""
    return f"SET hnsw.ef_search = {min(max(int(ef_search), 10), 1000)}; SET enable_sort = off"


async def search_tuned(conn: AsyncConnection, store: StoreRow, vector: npt.NDArray[np.float32], k: int) -> list[Hit]:
    """An unfiltered ANN search on a connection whose session already has ``tuned_session``:
    one round trip instead of a transaction with its own settings."""
    cur = await conn.execute(_ann_query(store, k, k), {"q": vector_text(vector), "tenant": store.tenant},
                             prepare=False)
    return [Hit(*row) for row in await cur.fetchall()]


async def search_store(conn: AsyncConnection, store: StoreRow, vector: npt.NDArray[np.float32], k: int,
                       filters: Any, ef_search: int) -> list[Hit]:
    q = vector_text(vector)
    where = filter_sql(filters, sql.SQL("vf.attributes")) if filters is not None else sql.SQL("true")
    if not store.indexed:
        return await _exact(conn, store, q, k, where)
    fetch = k if filters is None else max(k * _OVERFETCH, 100)
    hits = await _ann(conn, store, q, k, fetch, where, max(ef_search, fetch))
    if filters is not None and len(hits) < k:
        return await _exact(conn, store, q, k, where)
    return hits


def _ann_query(store: StoreRow, k: int, fetch: int, where: sql.Composable = _TRUE) -> sql.Composed:
    return sql.SQL(
        "WITH hits AS MATERIALIZED (SELECT c.file_id, c.seq, c.text, c.embedding::{t} <=> %(q)s::{t} AS d "
        "FROM llmops_chunks c WHERE c.store_id = {sid} AND c.tenant = %(tenant)s "
        "ORDER BY c.embedding::{t} <=> %(q)s::{t} LIMIT {fetch}) "
        "SELECT h.file_id, h.seq, f.filename, h.text, 1 - h.d, vf.attributes FROM hits h "
        "JOIN llmops_vector_store_files vf ON vf.store_id = {sid} AND vf.file_id = h.file_id "
        "JOIN llmops_files f ON f.id = h.file_id AND f.tenant = %(tenant)s "
        "WHERE {where} ORDER BY h.d LIMIT {k}"
    ).format(t=_typed(store), sid=sql.Literal(store.id), where=where, fetch=sql.Literal(fetch), k=sql.Literal(k))


async def _ann(conn: AsyncConnection, store: StoreRow, q: str, k: int, fetch: int, where: sql.Composable,
               ef: int) -> list[Hit]:
    query = _ann_query(store, k, fetch, where)
    params = {"q": q, "tenant": store.tenant}
    async with conn.transaction():
        # One round trip for both; sorting the store's rows is exact but slow, so steer the planner
        # to the store's HNSW graph.
        await conn.execute("SELECT set_config('hnsw.ef_search', %s, true), set_config('enable_sort', 'off', true)",
                           (str(min(ef, 1000)),))
        # Never a prepared generic plan: it cannot see that the LIMIT is small and may sort the store.
        cur = await conn.execute(query, params, prepare=False)
        return [Hit(*row) for row in await cur.fetchall()]


async def _exact(conn: AsyncConnection, store: StoreRow, q: str, k: int, where: sql.Composable) -> list[Hit]:
    # ``embedding <=> q`` (no cast) matches no index expression: a sequential, exact scan of the store.
    query = sql.SQL(
        "SELECT c.file_id, c.seq, f.filename, c.text, 1 - (c.embedding <=> %(q)s::vector), vf.attributes "
        "FROM llmops_chunks c "
        "JOIN llmops_vector_store_files vf ON vf.store_id = c.store_id AND vf.file_id = c.file_id "
        "JOIN llmops_files f ON f.id = c.file_id AND f.tenant = %(tenant)s "
        "WHERE c.store_id = {sid} AND c.tenant = %(tenant)s AND {where} "
        "ORDER BY c.embedding <=> %(q)s::vector LIMIT {k}"
    ).format(sid=sql.Literal(store.id), where=where, k=sql.Literal(k))
    cur = await conn.execute(query, {"q": q, "tenant": store.tenant}, prepare=False)
    return [Hit(*row) for row in await cur.fetchall()]


async def build_index(conn: AsyncConnection, store: StoreRow) -> None:
    """The store's own HNSW graph (partial index); maintained by later inserts."""
    await conn.execute("SET maintenance_work_mem = '1GB'")
    try:
        await conn.execute(sql.SQL(
            "CREATE INDEX IF NOT EXISTS {name} ON llmops_chunks USING hnsw ((embedding::{t}) vector_cosine_ops) "
            "WITH (m = 16, ef_construction = 64) WHERE store_id = {sid}"
        ).format(name=index_name(store.id), t=_typed(store), sid=sql.Literal(store.id)))
        await conn.execute("ANALYZE llmops_chunks")  # so the planner sees the store's real size
        await conn.execute("UPDATE llmops_vector_stores SET indexed = true WHERE id = %s", (store.id,))
    finally:
        await conn.execute("RESET maintenance_work_mem")


async def drop_index(conn: AsyncConnection, store_id: str) -> None:
    await conn.execute(sql.SQL("DROP INDEX IF EXISTS {}").format(index_name(store_id)))


async def copy_chunks(conn: AsyncConnection, store: StoreRow, file_id: str, texts: list[str],
                      vectors: npt.NDArray[np.float32], first_seq: int = 0) -> None:
    async with conn.cursor() as cur:
        async with cur.copy("COPY llmops_chunks (store_id, file_id, seq, tenant, text, embedding) FROM STDIN") as cp:
            for i, (text, vec) in enumerate(zip(texts, vectors, strict=True)):
                await cp.write_row((store.id, file_id, first_seq + i, store.tenant, text, vector_text(vec)))


async def chunk_count(conn: AsyncConnection, store_id: str) -> int:
    cur = await conn.execute("SELECT count(*) FROM llmops_chunks WHERE store_id = %s", (store_id,))
    row = await cur.fetchone()
    return int(row[0]) if row else 0
