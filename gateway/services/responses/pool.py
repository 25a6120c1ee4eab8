"""The shared PostgreSQL pool, opened and migrated on first use; database failures become a 503."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any

import psycopg
import psycopg_pool

from gateway.kernel.errors import ServiceOverloaded
from gateway.services.responses.schema import COMPONENT, MIGRATIONS
from gateway.services.stores.errors import database_errors
from gateway.services.stores.migrations import migrate

if TYPE_CHECKING:
    from gateway.services.stores.postgres import Postgres

Connection = psycopg.AsyncConnection[Any]


class StateUnavailable(ServiceOverloaded):
    default_code = "response_store_unavailable"


class StatePool:
    """Hands out connections of the shared pool; the first one opens PostgreSQL (embedded or by DSN)
    and applies this component's migrations. ``on_open`` runs once, after that."""

    def __init__(self, open_postgres: Callable[[], Awaitable[Postgres]],
                 on_open: Callable[[], None] | None = None) -> None:
        self._open = open_postgres
        self._on_open = on_open
        self._pool: psycopg_pool.AsyncConnectionPool | None = None
        self._lock = asyncio.Lock()

    @property
    def is_open(self) -> bool:
        return self._pool is not None

    async def pool(self) -> psycopg_pool.AsyncConnectionPool:
        if self._pool is not None:
            return self._pool
        async with self._lock:
            if self._pool is None:
                with mapped_errors():
                    pg = await self._open()
                    async with pg.pool.connection() as conn:
                        await migrate(conn, COMPONENT, MIGRATIONS)
                self._pool = pg.pool
                if self._on_open is not None:
                    self._on_open()
        return self._pool

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[Connection]:
        pool = await self.pool()
        with mapped_errors():
            async with pool.connection() as conn:
                yield conn

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[Connection]:
        async with self.connection() as conn, conn.transaction():
            yield conn


def mapped_errors() -> contextlib.AbstractContextManager[None]:
    return database_errors(StateUnavailable, "response store")
