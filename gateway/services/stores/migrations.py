"""Schema migrations: each component owns an ordered list of SQL steps, applied once each."""

from __future__ import annotations

from collections.abc import Sequence

from psycopg import AsyncConnection

_LEDGER = """
CREATE TABLE IF NOT EXISTS llmops_schema_migrations (
    component text NOT NULL,
    version integer NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (component, version)
)
"""
_LOCK_ID = 0x6C6C6D6F7073  # "llmops": serialise migrations across replicas


async def migrate(conn: AsyncConnection, component: str, steps: Sequence[str]) -> int:
    """Apply ``steps[n]`` for every version n+1 not yet recorded; returns how many ran."""
    applied = 0
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_ID,))
        await conn.execute(_LEDGER)
        cur = await conn.execute(
            "SELECT coalesce(max(version), 0) FROM llmops_schema_migrations WHERE component = %s", (component,)
        )
        row = await cur.fetchone()
        current = int(row[0]) if row else 0
        for version, sql in enumerate(steps, start=1):
            if version <= current:
                continue
            await conn.execute(sql.encode())
            await conn.execute(
                "INSERT INTO llmops_schema_migrations (component, version) VALUES (%s, %s)", (component, version)
            )
            applied += 1
    return applied
