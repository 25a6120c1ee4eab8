"""The MCP stores' share of the PostgreSQL pool: opened and migrated on first use; database failures are a 503.

Two tables (component ``mcp``): ``llmops_mcp_credentials``, one encrypted upstream token per (subject,
server); ``llmops_mcp_pins``, per (server, tool) the approved definition and the pending one (a first
sighting awaiting approval, or a change), with what the scanner found in it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import TYPE_CHECKING, Any

import psycopg
import psycopg_pool

from gateway.kernel.errors import ServiceOverloaded
from gateway.services.stores.migrations import migrate

if TYPE_CHECKING:
    from gateway.services.stores.postgres import Postgres

Connection = psycopg.AsyncConnection[Any]
COMPONENT = "mcp"
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE llmops_mcp_credentials (
        subject text NOT NULL,
        server text NOT NULL,
        nonce bytea NOT NULL,
        ciphertext bytea NOT NULL,
        key_id text NOT NULL,
        fingerprint text NOT NULL,
        updated_at bigint NOT NULL,
        PRIMARY KEY (subject, server)
    );
    CREATE TABLE llmops_mcp_pins (
        server text NOT NULL,
        tool text NOT NULL,
        approved_hash text,
        approved jsonb,
        approved_at bigint,
        approved_by text,
        pending_hash text,
        pending jsonb,
        pending_at bigint,
        findings jsonb NOT NULL DEFAULT '[]',
        revoked boolean NOT NULL DEFAULT false,
        PRIMARY KEY (server, tool)
    );
    """,
    """
    ALTER TABLE llmops_mcp_credentials ADD COLUMN refresh_nonce bytea, ADD COLUMN refresh_ciphertext bytea,
        ADD COLUMN expires_at bigint;
    CREATE TABLE llmops_mcp_oauth_states (
        state_hash text PRIMARY KEY,
        subject text NOT NULL,
        server text NOT NULL,
        nonce bytea NOT NULL,
        verifier bytea NOT NULL,
        expires_at bigint NOT NULL
    );
    CREATE INDEX llmops_mcp_oauth_states_expiry ON llmops_mcp_oauth_states (expires_at);
    """,
)


class McpStoreUnavailable(ServiceOverloaded):
    default_code = "mcp_store_unavailable"


class McpPool:
    def __init__(self, open_postgres: Callable[[], Awaitable[Postgres]]) -> None:
        self._open = open_postgres
        self._pool: psycopg_pool.AsyncConnectionPool | None = None
        self._lock = asyncio.Lock()

    async def _ready(self) -> psycopg_pool.AsyncConnectionPool:
        if self._pool is not None:
            return self._pool
        async with self._lock:
            if self._pool is None:
                with unavailable():
                    pg = await self._open()
                    async with pg.pool.connection() as conn:
                        await migrate(conn, COMPONENT, MIGRATIONS)
                self._pool = pg.pool
        return self._pool

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[Connection]:
        pool = await self._ready()
        with unavailable():
            async with pool.connection() as conn:
                yield conn


@contextlib.contextmanager
def unavailable() -> Iterator[None]:
    """Connection failures as a 503 (``mcp_store_unavailable``); the message never quotes a DSN."""
    try:
        yield
    except (psycopg.OperationalError, psycopg_pool.PoolTimeout, psycopg_pool.PoolClosed, OSError) as exc:
        raise McpStoreUnavailable(f"The MCP store is unavailable ({type(exc).__name__}).") from None
    except RuntimeError as exc:  # pgserver failing to start the embedded server
        if "pgserver" in repr(exc) or "postgres" in repr(exc).lower():
            raise McpStoreUnavailable("The embedded MCP store database could not start.") from None
        raise
