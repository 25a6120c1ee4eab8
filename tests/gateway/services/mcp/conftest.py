from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio

from gateway.kernel.config.sections.stores import PostgresSettings
from gateway.services.mcp.pool import McpPool
from gateway.services.stores.postgres import Postgres
from tests.support.services import new_database


@pytest_asyncio.fixture(loop_scope="session", scope="session")
async def mcp_postgres(postgres_dsn: str) -> AsyncIterator[Postgres]:
    pg = await Postgres.open(PostgresSettings(dsn=new_database(postgres_dsn, "mcpstores")))
    yield pg
    await pg.aclose()


@pytest_asyncio.fixture(loop_scope="session")
async def mcp_pool(mcp_postgres: Postgres) -> McpPool:
    async def opened() -> Postgres:
        return mcp_postgres

    return McpPool(opened)
