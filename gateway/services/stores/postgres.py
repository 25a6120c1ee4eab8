"""PostgreSQL: a pool on a configured DSN, or an embedded server (pgserver) the gateway manages."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from psycopg_pool import AsyncConnectionPool

from gateway.kernel.config.sections.stores import PostgresSettings


class EmbeddedPostgres:
    """PostgreSQL 16 with pgvector from the ``pgserver`` wheel, kept in ``directory``."""

    def __init__(self, directory: str) -> None:
        self._directory = Path(directory).resolve()
        self._server: Any = None

    def start(self) -> str:
        import pgserver

        self._directory.mkdir(parents=True, exist_ok=True)
        get_server: Any = pgserver.get_server  # type: ignore[attr-defined]
        self._server = get_server(str(self._directory), cleanup_mode="stop")
        uri: str = self._server.get_uri()
        return uri

    def stop(self) -> None:
        if self._server is not None:
            self._server.cleanup()
            self._server = None


class Postgres:
    """An open pool; ``open`` starts the embedded server first when no DSN is configured."""

    def __init__(self, pool: AsyncConnectionPool, embedded: EmbeddedPostgres | None) -> None:
        self.pool = pool
        self._embedded = embedded

    @classmethod
    async def open(cls, settings: PostgresSettings) -> Postgres:
        embedded: EmbeddedPostgres | None = None
        if settings.dsn is not None:
            dsn = settings.dsn.get_secret_value()
        else:
            embedded = EmbeddedPostgres(settings.embedded_dir)
            dsn = await asyncio.to_thread(embedded.start)
        pool = AsyncConnectionPool(
            dsn,
            min_size=settings.pool_min,
            max_size=settings.pool_max,
            timeout=settings.connect_timeout_s,
            kwargs={"autocommit": True},
            open=False,
        )
        await pool.open(wait=True, timeout=settings.connect_timeout_s)
        return cls(pool, embedded)

    async def aclose(self) -> None:
        await self.pool.close()
        if self._embedded is not None:
            await asyncio.to_thread(self._embedded.stop)
