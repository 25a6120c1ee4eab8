"""The PostgreSQL key store against a real server: migrations, lookups, revoke, rotate."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest
from psycopg_pool import AsyncConnectionPool

from gateway.services.identity.postgres import PostgresKeyStore
from gateway.services.identity.types import KeyExists, KeyRecord


@pytest.fixture
async def store(postgres_dsn: str) -> AsyncIterator[PostgresKeyStore]:
    pool = AsyncConnectionPool(postgres_dsn, min_size=1, max_size=2, kwargs={"autocommit": True}, open=False)
    await pool.open()
    async with pool.connection() as conn:
        await conn.execute("DROP TABLE IF EXISTS llmops_keys")
        await conn.execute("CREATE TABLE IF NOT EXISTS llmops_schema_migrations (component text, version int)")
        await conn.execute("DELETE FROM llmops_schema_migrations WHERE component = 'identity'")
    s = PostgresKeyStore(pool)
    await s.migrate()
    await s.migrate()  # idempotent
    yield s
    await pool.close()


async def test_roundtrip_revoke_rotate(store: PostgresKeyStore) -> None:
    rec = KeyRecord("k1", "h1", "team", roles=("dev",), models=("sim-*",), rpm=3, budget_usd=1.5,
                    metadata={"owner": "ana"})
    await store.create(rec)
    assert await store.by_hash("h1") == rec
    assert await store.get("missing") is None
    assert [r.key_id for r in await store.list("team")] == ["k1"]
    assert await store.list("other") == []
    rotated = await store.rotate("k1", "h2")
    assert rotated is not None and rotated.key_hash == "h2" and await store.by_hash("h1") is None
    revoked = await store.revoke("k1", time.time())
    assert revoked is not None and not revoked.usable(time.time())
    assert await store.rotate("k1", "h3") is None


async def test_a_taken_key_id_is_key_exists_not_a_database_error(store: PostgresKeyStore) -> None:
    await store.create(KeyRecord("k1", "h1", "team"))
    with pytest.raises(KeyExists):
        await store.create(KeyRecord("k1", "h2", "other"))
    with pytest.raises(KeyExists):
        await store.create(KeyRecord("k2", "h1", "other"))  # the same secret's hash twice
    assert [r.tenant for r in await store.list()] == ["team"] and await store.get("k2") is None
