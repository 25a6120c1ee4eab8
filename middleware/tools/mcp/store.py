"""Upstream MCP servers registered at runtime (the admin API), kept in PostgreSQL so every replica sees them.

One row per server: its name and its definition (an ``McpServer`` as JSON: the name of a secret, never a
secret's value). The pool is the gateway's shared one, opened on first use like the response state's
(``gateway/services/responses/pool.py``); this component applies its own migrations.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import TYPE_CHECKING

import orjson
import psycopg
import psycopg_pool

from gateway.kernel.config.sections.mcp import McpServer
from gateway.kernel.errors import ServiceOverloaded
from gateway.services.stores.migrations import migrate

if TYPE_CHECKING:
    from gateway.services.stores.postgres import Postgres

COMPONENT = "mcp_servers"
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE llmops_mcp_servers (
        name text PRIMARY KEY,
        server jsonb NOT NULL,
        created_at bigint NOT NULL
    );
    """,
)


class ServerStore:
    def __init__(self, open_postgres: Callable[[], Awaitable[Postgres]]) -> None:
        self._open = open_postgres
        self._pool: psycopg_pool.AsyncConnectionPool | None = None
        self._lock = asyncio.Lock()

    @property
    def is_open(self) -> bool:
        return self._pool is not None

    async def list(self) -> list[McpServer]:
        pool = await self._opened()
        with mapped_errors():
            async with pool.connection() as conn:
                cur = await conn.execute("SELECT server FROM llmops_mcp_servers ORDER BY name")
                rows = await cur.fetchall()
        return [McpServer.model_validate(row[0]) for row in rows]

    async def add(self, server: McpServer) -> bool:
        """False when a server of that name is already registered."""
        pool = await self._opened()
        doc = orjson.dumps(server.model_dump(mode="json")).decode()
        with mapped_errors():
            async with pool.connection() as conn:
                try:
                    await conn.execute("INSERT INTO llmops_mcp_servers (name, server, created_at) VALUES (%s, %s, %s)",
                                       (server.name, doc, int(time.time())))
                except psycopg.errors.UniqueViolation:
                    return False
        return True

    async def delete(self, name: str) -> bool:
        pool = await self._opened()
        with mapped_errors():
            async with pool.connection() as conn:
                cur = await conn.execute("DELETE FROM llmops_mcp_servers WHERE name = %s", (name,))
                return cur.rowcount > 0

    async def _opened(self) -> psycopg_pool.AsyncConnectionPool:
        if self._pool is not None:
            return self._pool
        async with self._lock:
            if self._pool is None:
                with mapped_errors():
                    pg = await self._open()
                    async with pg.pool.connection() as conn:
                        await migrate(conn, COMPONENT, MIGRATIONS)
                self._pool = pg.pool
        return self._pool


@contextlib.contextmanager
def mapped_errors() -> Iterator[None]:
    try:
        yield
    except (psycopg.OperationalError, psycopg_pool.PoolTimeout, psycopg_pool.PoolClosed, OSError) as exc:
        raise ServiceOverloaded(f"The MCP server registry is unavailable ({type(exc).__name__}).",
                                code="mcp_registry_unavailable") from None
