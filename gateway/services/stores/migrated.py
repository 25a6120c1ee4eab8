"""One component's share of the gateway's PostgreSQL pool: opened (embedded or by DSN) and migrated on first
use, its database failures a 503 of the component's own kind. The response state, the MCP stores and the
MCP server registry each hold one."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any

import psycopg
import psycopg_pool

from gateway.kernel.errors import ServiceOverloaded
from gateway.services.stores.errors import database_errors
from gateway.services.stores.migrations import migrate

if TYPE_CHECKING:
    from gateway.services.stores.postgres import Postgres

Connection = psycopg.AsyncConnection[Any]


class MigratedPool:
    """``component``'s ``migrations`` applied once, by the first caller; ``on_open`` runs once, after that.
    Failures are raised as ``unavailable`` naming ``what`` (e.g. "response store")."""

    def __init__(self, open_postgres: Callable[[], Awaitable[Postgres]], component: str,
                 migrations: tuple[str, ...], unavailable: type[ServiceOverloaded], what: str,
                 on_open: Callable[[], None] | None = None) -> None:
        self._open = open_postgres
        self._component, self._migrations = component, migrations
        self._unavailable, self._what = unavailable, what
        self._on_open = on_open
        self._pool: psycopg_pool.AsyncConnectionPool | None = None
        self._lock = asyncio.Lock()

    @property
    def is_open(self) -> bool:
        return self._pool is not None

    def errors(self) -> contextlib.AbstractContextManager[None]:
        return database_errors(self._unavailable, self._what)

    async def pool(self) -> psycopg_pool.AsyncConnectionPool:
        if self._pool is not None:
            return self._pool
        async with self._lock:
            if self._pool is None:
                with self.errors():
                    pg = await self._open()
                    async with pg.pool.connection() as conn:
                        await migrate(conn, self._component, self._migrations)
                self._pool = pg.pool
                if self._on_open is not None:
                    self._on_open()
        return self._pool

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[Connection]:
        pool = await self.pool()
        with self.errors():
            async with pool.connection() as conn:
                yield conn

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[Connection]:
        async with self.connection() as conn, conn.transaction():
            yield conn
