from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from gateway.kernel.config.sections.responses import BackgroundSettings, ResponsesSettings
from gateway.kernel.config.sections.stores import PostgresSettings
from gateway.services.responses import ResponseState
from gateway.services.stores.postgres import Postgres
from tests.support.response_objects import Query
from tests.support.services import new_database

SETTINGS = ResponsesSettings(max_chain_depth=3, background=BackgroundSettings(lease_s=1, poll_interval_s=0.05,
                                                                              concurrency=3))


@pytest.fixture(scope="session")
def queue_dsn(postgres_dsn: str) -> str:
    """A database of its own for the queue tests: a runner claims any queued job it can see, so no
    other test's gateway may share their queue."""
    return new_database(postgres_dsn, "queue")


async def _postgres(dsn: str) -> Postgres:
    return await Postgres.open(PostgresSettings(dsn=dsn, pool_max=20))


@pytest_asyncio.fixture(loop_scope="session", scope="session")
async def postgres(postgres_dsn: str) -> AsyncIterator[Postgres]:
    pg = await _postgres(postgres_dsn)
    yield pg
    await pg.aclose()


@pytest_asyncio.fixture(loop_scope="session", scope="session")
async def queue_postgres(queue_dsn: str) -> AsyncIterator[Postgres]:
    pg = await _postgres(queue_dsn)
    yield pg
    await pg.aclose()


async def _state(postgres: Postgres) -> ResponseState:
    async def opened() -> Postgres:
        return postgres

    svc = ResponseState(opened, SETTINGS)
    await svc.open()
    return svc


@pytest_asyncio.fixture(loop_scope="session")
async def state(postgres: Postgres) -> AsyncIterator[ResponseState]:
    svc = await _state(postgres)
    yield svc
    await svc.aclose()


@pytest_asyncio.fixture(loop_scope="session")
async def queue_state(queue_postgres: Postgres) -> AsyncIterator[ResponseState]:
    svc = await _state(queue_postgres)
    yield svc
    await svc.aclose()


@pytest.fixture
def tenant() -> str:
    return "t-" + secrets.token_hex(6)


def _query(postgres: Postgres) -> Query:
    async def run(query: str, *params: Any) -> list[tuple[Any, ...]]:
        async with postgres.pool.connection() as conn:
            cur = await conn.execute(query.encode(), params)
            return await cur.fetchall() if cur.description is not None else []

    return run


@pytest.fixture
def sql(postgres: Postgres) -> Query:
    """Read the tables directly: ``await sql("SELECT ... WHERE tenant = %s", tenant)``."""
    return _query(postgres)


@pytest.fixture
def queue_sql(queue_postgres: Postgres) -> Query:
    return _query(queue_postgres)
