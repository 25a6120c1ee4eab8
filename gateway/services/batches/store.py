"""SQL of the Batch API. Every read a client can cause is scoped by tenant."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

Connection = psycopg.AsyncConnection[Any]
TIMES = ("in_progress_at", "finalizing_at", "completed_at", "failed_at", "expired_at", "cancelling_at",
         "cancelled_at")
_COLUMNS = ("id, tenant, caller, endpoint, input_file_id, completion_window, status, created_at, expires_at, "
            + ", ".join(TIMES) + ", output_file_id, error_file_id, errors, metadata, total, chunks, completed, failed")


@dataclass(frozen=True, slots=True)
class BatchRow:
    id: str
    tenant: str
    caller: dict[str, Any] | None
    endpoint: str
    input_file_id: str
    completion_window: str
    status: str
    created_at: int
    expires_at: int
    times: dict[str, int | None]
    output_file_id: str | None
    error_file_id: str | None
    errors: dict[str, Any] | None
    metadata: dict[str, Any] | None
    total: int
    chunks: int
    completed: int
    failed: int


def now() -> int:
    return int(time.time())


def _row(r: Sequence[Any]) -> BatchRow:
    times = dict(zip(TIMES, r[9:16], strict=True))
    return BatchRow(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], times, *r[16:])


async def insert(conn: Connection, row: BatchRow) -> None:
    await conn.execute(
        "INSERT INTO llmops_batches (id, tenant, caller, endpoint, input_file_id, completion_window, status, "
        "created_at, expires_at, metadata) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (row.id, row.tenant, Jsonb(row.caller), row.endpoint, row.input_file_id, row.completion_window, row.status,
         row.created_at, row.expires_at, Jsonb(row.metadata) if row.metadata is not None else None))


async def get(conn: Connection, batch_id: str, tenant: str | None = None, *, lock: bool = False) -> BatchRow | None:
    scope = " AND tenant = %s" if tenant is not None else ""
    args: tuple[Any, ...] = (batch_id, tenant) if tenant is not None else (batch_id,)
    cur = await conn.execute(f"SELECT {_COLUMNS} FROM llmops_batches WHERE id = %s{scope}"
                             + (" FOR UPDATE" if lock else ""), args)
    found = await cur.fetchone()
    return _row(found) if found else None


async def page(conn: Connection, tenant: str, limit: int, after: str | None) -> list[BatchRow]:
    if after is None:
        cur = await conn.execute(f"SELECT {_COLUMNS} FROM llmops_batches WHERE tenant = %s "
                                 "ORDER BY seq DESC LIMIT %s", (tenant, limit))
    else:
        cur = await conn.execute(
            f"SELECT {_COLUMNS} FROM llmops_batches WHERE tenant = %s AND seq < "
            "(SELECT seq FROM llmops_batches WHERE tenant = %s AND id = %s) "
            "ORDER BY seq DESC LIMIT %s", (tenant, tenant, after, limit))
    return [_row(r) for r in await cur.fetchall()]


async def move(conn: Connection, batch_id: str, status: str, when: Sequence[str], **fields: Any) -> bool:
    """Set ``status`` (stamping ``<status>_at``) if the batch is in one of ``when``; whether it moved."""
    sets = ["status = %s", f"{status}_at = %s", *(f"{k} = %s" for k in fields)]
    values = [status, now(), *(Jsonb(v) if isinstance(v, dict) else v for v in fields.values())]
    cur = await conn.execute(f"UPDATE llmops_batches SET {', '.join(sets)} WHERE id = %s AND status = ANY(%s)",
                             (*values, batch_id, list(when)))
    return cur.rowcount > 0


async def counts(conn: Connection, batch_id: str) -> tuple[int, int]:
    """(completed, failed) lines so far."""
    cur = await conn.execute("SELECT count(*) FILTER (WHERE ok), count(*) FILTER (WHERE NOT ok) "
                             "FROM llmops_batch_results WHERE batch_id = %s", (batch_id,))
    found = await cur.fetchone()
    return (int(found[0]), int(found[1])) if found else (0, 0)


async def done_ids(conn: Connection, batch_id: str, custom_ids: list[str]) -> set[str]:
    cur = await conn.execute("SELECT custom_id FROM llmops_batch_results WHERE batch_id = %s "
                             "AND custom_id = ANY(%s)", (batch_id, custom_ids))
    return {r[0] for r in await cur.fetchall()}


async def write_results(conn: Connection, batch_id: str, results: Sequence[tuple[str, int, bool, str]]) -> None:
    """Each line's result once: a line already written (a retried chunk) keeps its first result."""
    async with conn.cursor() as cur:
        await cur.executemany(
            "INSERT INTO llmops_batch_results (batch_id, custom_id, line, ok, result) VALUES (%s, %s, %s, %s, %s) "
            "ON CONFLICT (batch_id, custom_id) DO NOTHING", [(batch_id, *r) for r in results])


async def finish_chunk(conn: Connection, batch_id: str, chunk: int) -> int:
    """Record ``chunk`` as finished; how many chunks of the batch are."""
    await conn.execute("INSERT INTO llmops_batch_chunks (batch_id, chunk) VALUES (%s, %s) ON CONFLICT DO NOTHING",
                       (batch_id, chunk))
    cur = await conn.execute("SELECT count(*) FROM llmops_batch_chunks WHERE batch_id = %s", (batch_id,))
    found = await cur.fetchone()
    return int(found[0]) if found else 0


async def results(conn: Connection, batch_id: str) -> list[tuple[str, bool, str]]:
    """(custom_id, ok, result line) of every line, in input order."""
    cur = await conn.execute("SELECT custom_id, ok, result FROM llmops_batch_results WHERE batch_id = %s "
                             "ORDER BY line", (batch_id,))
    return [(r[0], r[1], r[2]) for r in await cur.fetchall()]
