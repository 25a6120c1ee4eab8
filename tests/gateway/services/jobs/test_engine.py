"""The job engine (``gateway/services/jobs/engine.py``) on a real PostgreSQL: a job runs in some worker,
a job deferred in a transaction that rolls back never exists, and a failing job is retried."""

from __future__ import annotations

import asyncio
import contextlib
import io
from collections.abc import AsyncIterator

import pytest
from psycopg_pool import AsyncConnectionPool

from gateway.kernel.config.sections.batches import JobsSettings
from gateway.kernel.observability.logging import JsonLog
from gateway.services.jobs.engine import JobEngine
from gateway.services.stores.postgres import Postgres
from tests.support.services import new_database

FAST = JobsSettings(heartbeat_s=0.5, stalled_after_s=2, rescue_interval_s=0.5, poll_interval_s=0.1,
                    shutdown_grace_s=0.5)


@pytest.fixture
def dsn(postgres_dsn: str) -> str:
    return new_database(postgres_dsn, "jobs")


@contextlib.asynccontextmanager
async def running(dsn: str) -> AsyncIterator[tuple[JobEngine, Postgres]]:
    """An engine on ``dsn`` (its worker and pools in the test's own event loop)."""
    pool = AsyncConnectionPool(dsn, min_size=1, max_size=4, kwargs={"autocommit": True}, open=False)
    await pool.open(wait=True)
    pg = Postgres(pool, None)

    async def opener() -> Postgres:
        return pg

    jobs = JobEngine(opener, FAST, JsonLog(io.BytesIO()))
    try:
        yield jobs, pg
    finally:
        await jobs.aclose()
        await pool.close()


async def _until(condition: list[int], size: int) -> None:
    for _ in range(200):
        if len(condition) >= size:
            return
        await asyncio.sleep(0.05)


async def test_a_job_runs_and_a_rolled_back_one_never_exists(dsn: str) -> None:
    ran: list[int] = []

    async def record(n: int) -> None:
        ran.append(n)

    async with running(dsn) as (engine, pg):
        engine.register("test.record", record)
        async with pg.pool.connection() as conn:
            with pytest.raises(RuntimeError):
                async with conn.transaction():
                    await engine.defer("test.record", [{"n": 1}], connection=conn)
                    raise RuntimeError("roll back")
            async with conn.transaction():
                await engine.defer("test.record", [{"n": 2}, {"n": 3}], connection=conn)
        await _until(ran, 2)
        await asyncio.sleep(0.3)
    assert sorted(ran) == [2, 3]


async def test_a_failing_job_runs_again(dsn: str) -> None:
    tries: list[int] = []

    async def flaky(n: int) -> None:
        tries.append(n)
        if len(tries) == 1:
            raise ConnectionError("a database blip")

    async with running(dsn) as (engine, _):
        engine.register("test.flaky", flaky)
        await engine.defer("test.flaky", [{"n": 7}])
        await _until(tries, 2)
    assert tries == [7, 7]
