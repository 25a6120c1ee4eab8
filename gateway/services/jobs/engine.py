"""The job engine: procrastinate (a maintained PostgreSQL job queue) on the gateway's own database.

Every replica runs one worker; any replica picks up a queued job (``SELECT ... FOR UPDATE SKIP LOCKED``
inside procrastinate, woken by ``LISTEN/NOTIFY``). Workers record heartbeats; a replica killed with
SIGKILL stops beating, and the ``rescue`` loop of every live replica queues its running jobs again.
A job therefore runs at least once: tasks make their effects idempotent (the batch lines are written
insert-if-absent, keyed by ``custom_id``).

Tasks are registered by name before ``start`` (``register``); jobs are queued with ``defer``, inside the
caller's transaction when it passes its connection, so a row and the job that works on it commit together.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

import procrastinate
import psycopg
import psycopg_pool
from procrastinate import exceptions as pexc
from procrastinate.retry import RetryStrategy
from procrastinate.schema import SchemaManager

from gateway.kernel.config.sections.batches import JobsSettings
from gateway.kernel.observability.logging import JsonLog
from gateway.services.stores.migrations import migrate

if TYPE_CHECKING:
    from gateway.services.stores.postgres import Postgres

Task = Callable[..., Awaitable[None]]
Connection = psycopg.AsyncConnection[Any]
COMPONENT = "procrastinate-3.10"  # its schema.sql, applied once; a newer pin brings its migrations as steps
QUEUE = "llmops"
# A job that raised (a database blip, a replica stopping) runs again; its effects are idempotent.
RETRY = RetryStrategy(max_attempts=20, wait=1)
_QUIET = (pexc.ProcrastinateException, psycopg.Error, psycopg_pool.PoolTimeout, OSError)


class JobEngine:
    def __init__(self, open_postgres: Callable[[], Awaitable[Postgres]], settings: JobsSettings, log: JsonLog,
                 name: str = "gateway") -> None:
        self._open = open_postgres
        self.settings = settings
        self._log = log
        self._name = name
        self._connector = procrastinate.PsycopgConnector()
        self.app = procrastinate.App(connector=self._connector)
        self._pool: psycopg_pool.AsyncConnectionPool | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._lock = asyncio.Lock()
        logging.getLogger("procrastinate").setLevel(logging.WARNING)

    def register(self, name: str, task: Task) -> None:
        """``task(**kwargs)`` runs the jobs queued as ``name``; it must tolerate running twice."""
        self.app.task(name=name, queue=QUEUE, retry=RETRY)(task)

    @property
    def started(self) -> bool:
        return self._pool is not None

    async def start(self) -> None:
        """Open a pool of its own on the gateway's database, apply the schema once, start this replica's
        worker and the rescue of dead workers' jobs."""
        async with self._lock:
            if self._pool is not None:
                return
            pg = await self._open()
            async with pg.pool.connection() as conn:
                await migrate(conn, COMPONENT, (SchemaManager.get_schema(),))
            # no connection kwargs: procrastinate's listener opens its own connection with autocommit=True
            pool = psycopg_pool.AsyncConnectionPool(pg.pool.conninfo, min_size=1, max_size=2, open=False)
            try:
                await pool.open(wait=True, timeout=10)
            except BaseException:
                await pool.close()
                raise
            await self._connector.open_async(pool)
            self._pool = pool
            if self.settings.concurrency > 0:
                self._tasks.append(asyncio.create_task(self._work(), name="jobs-worker"))
            self._tasks.append(asyncio.create_task(self._rescue_forever(), name="jobs-rescue"))

    async def defer(self, name: str, jobs: Sequence[dict[str, Any]], connection: Connection | None = None,
                    priority: int = 0) -> list[int]:
        """Queue one job of task ``name`` per kwargs in ``jobs`` (in ``connection``'s transaction if given)."""
        if not jobs:
            return []
        await self.start()
        deferrer = self.app.configure_task(name, queue=QUEUE, priority=priority, connection=connection)
        return await deferrer.batch_defer_async(*jobs)

    async def _work(self) -> None:
        s = self.settings
        while True:
            try:
                await self.app.run_worker_async(
                    queues=[QUEUE], name=self._name, concurrency=s.concurrency, install_signal_handlers=False,
                    update_heartbeat_interval=s.heartbeat_s, stalled_worker_timeout=s.stalled_after_s,
                    fetch_job_polling_interval=s.poll_interval_s, abort_job_polling_interval=s.poll_interval_s,
                    shutdown_graceful_timeout=s.shutdown_grace_s, delete_jobs="successful")
            except _QUIET as exc:  # the database went away: start again once it answers
                self._log.error("jobs_worker_failed", error=f"{type(exc).__name__}: {exc}"[:300])
            await asyncio.sleep(s.poll_interval_s)

    async def _rescue_forever(self) -> None:
        while True:
            await asyncio.sleep(self.settings.rescue_interval_s)
            try:
                await self.rescue()
            except _QUIET as exc:
                self._log.error("jobs_rescue_failed", error=f"{type(exc).__name__}: {exc}"[:300])

    async def rescue(self) -> int:
        """Queue again the running jobs of workers silent for ``stalled_after_s``; how many."""
        manager = self.app.job_manager
        stalled = await manager.get_stalled_jobs(queue=QUEUE, seconds_since_heartbeat=self.settings.stalled_after_s)
        rescued = 0
        for job in stalled:
            with contextlib.suppress(pexc.ConnectorException):  # another replica rescued it first
                await manager.retry_job(job)
                rescued += 1
        if rescued:
            self._log.warning("jobs_rescued", jobs=rescued)
        await manager.prune_stalled_workers(self.settings.stalled_after_s)
        return rescued

    async def aclose(self) -> None:
        """Stop the worker (running jobs get ``shutdown_grace_s``, then are queued again), close the pool."""
        for task in reversed(self._tasks):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, *_QUIET):
                await task
        self._tasks.clear()
        if self._pool is not None:
            await self._pool.close()
            self._pool = None
