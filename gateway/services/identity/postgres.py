"""Virtual keys in PostgreSQL (psycopg 3): one table, hashes only, migrated at startup."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from gateway.services.identity.types import KeyExists, KeyRecord
from gateway.services.stores.migrations import migrate

MIGRATIONS = (
    """
    CREATE TABLE llmops_keys (
        key_id text PRIMARY KEY,
        key_hash text NOT NULL UNIQUE,
        tenant text NOT NULL,
        roles text[] NOT NULL DEFAULT '{}',
        models text[] NOT NULL DEFAULT '{}',
        rpm integer,
        tpm integer,
        budget_usd double precision,
        metadata jsonb NOT NULL DEFAULT '{}',
        created_at double precision NOT NULL,
        expires_at double precision,
        revoked_at double precision
    );
    CREATE INDEX llmops_keys_tenant ON llmops_keys (tenant);
    """,
)
_COLUMNS = (
    "key_id, key_hash, tenant, roles, models, rpm, tpm, budget_usd, metadata, created_at, expires_at, revoked_at"
)


class PostgresKeyStore:
    def __init__(self, pool: AsyncConnectionPool) -> None:
        self._pool = pool

    async def migrate(self) -> None:
        async with self._pool.connection() as conn:
            await migrate(conn, "identity", MIGRATIONS)

    async def _one(self, sql: str, params: Sequence[Any]) -> KeyRecord | None:
        async with self._pool.connection() as conn:
            cur = conn.cursor(row_factory=dict_row)
            await cur.execute(sql.encode(), params)
            row = await cur.fetchone()
        return _record(row) if row else None

    async def by_hash(self, key_hash: str) -> KeyRecord | None:
        return await self._one(f"SELECT {_COLUMNS} FROM llmops_keys WHERE key_hash = %s", (key_hash,))

    async def get(self, key_id: str) -> KeyRecord | None:
        return await self._one(f"SELECT {_COLUMNS} FROM llmops_keys WHERE key_id = %s", (key_id,))

    async def create(self, record: KeyRecord) -> None:
        r = record
        params = (r.key_id, r.key_hash, r.tenant, list(r.roles), list(r.models), r.rpm, r.tpm, r.budget_usd,
                  Jsonb(r.metadata), r.created_at, r.expires_at, r.revoked_at)
        sql = (f"INSERT INTO llmops_keys ({_COLUMNS}) VALUES ({', '.join(['%s'] * 12)}) "
               "ON CONFLICT DO NOTHING RETURNING key_id")
        async with self._pool.connection() as conn:
            cur = await conn.execute(sql.encode(), params)
            inserted = await cur.fetchone()
        if inserted is None:  # the id (or, by astronomical chance, the hash) is taken
            raise KeyExists(f"A key with id {r.key_id!r} exists.")

    async def list(self, tenant: str | None = None) -> Sequence[KeyRecord]:
        where, params = ("WHERE tenant = %s", (tenant,)) if tenant is not None else ("", ())
        async with self._pool.connection() as conn:
            cur = conn.cursor(row_factory=dict_row)
            await cur.execute(f"SELECT {_COLUMNS} FROM llmops_keys {where} ORDER BY created_at".encode(), params)
            return [_record(row) for row in await cur.fetchall()]

    async def revoke(self, key_id: str, at: float) -> KeyRecord | None:
        sql = f"UPDATE llmops_keys SET revoked_at = coalesce(revoked_at, %s) WHERE key_id = %s RETURNING {_COLUMNS}"
        return await self._one(sql, (at, key_id))

    async def rotate(self, key_id: str, key_hash: str) -> KeyRecord | None:
        sql = (f"UPDATE llmops_keys SET key_hash = %s WHERE key_id = %s AND revoked_at IS NULL "
               f"RETURNING {_COLUMNS}")
        return await self._one(sql, (key_hash, key_id))


def _record(row: dict[str, Any]) -> KeyRecord:
    return KeyRecord(
        key_id=row["key_id"],
        key_hash=row["key_hash"],
        tenant=row["tenant"],
        roles=tuple(row["roles"]),
        models=tuple(row["models"]),
        rpm=row["rpm"],
        tpm=row["tpm"],
        budget_usd=row["budget_usd"],
        metadata=dict(row["metadata"]),
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        revoked_at=row["revoked_at"],
    )
