"""Upstream MCP servers registered at runtime (the admin API), kept in PostgreSQL so every replica sees them.

One row per server: its name and its definition (an ``McpServer`` as JSON: the name of a secret, never a
secret's value). The pool is the gateway's shared one, opened and migrated on first use
(``services/stores/migrated.MigratedPool``), as the response state and the MCP stores do.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import orjson
import psycopg

from gateway.kernel.config.sections.mcp import McpServer
from gateway.kernel.errors import ServiceOverloaded
from gateway.services.stores.migrated import MigratedPool

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


class RegistryUnavailable(ServiceOverloaded):
    default_code = "mcp_registry_unavailable"


class ServerStore:
    def __init__(self, open_postgres: Callable[[], Awaitable[Postgres]]) -> None:
        self._pool = MigratedPool(open_postgres, COMPONENT, MIGRATIONS, RegistryUnavailable, "MCP server registry")

    @property
    def is_open(self) -> bool:
        return self._pool.is_open

    async def list(self) -> list[McpServer]:
        async with self._pool.connection() as conn:
            cur = await conn.execute("SELECT server FROM llmops_mcp_servers ORDER BY name")
            rows = await cur.fetchall()
        return [McpServer.model_validate(row[0]) for row in rows]

    async def add(self, server: McpServer) -> bool:
        """False when a server of that name is already registered."""
        doc = orjson.dumps(server.model_dump(mode="json")).decode()
        async with self._pool.connection() as conn:
            try:
                await conn.execute("INSERT INTO llmops_mcp_servers (name, server, created_at) VALUES (%s, %s, %s)",
                                   (server.name, doc, int(time.time())))
            except psycopg.errors.UniqueViolation:
                return False
        return True

    async def delete(self, name: str) -> bool:
        async with self._pool.connection() as conn:
            cur = await conn.execute("DELETE FROM llmops_mcp_servers WHERE name = %s", (name,))
            return cur.rowcount > 0
