"""Everything the Responses and Conversations endpoints keep, on the shared PostgreSQL pool.

Nothing is opened until first used (the default configuration starts without PostgreSQL), or until
``open_soon`` (the gateway calls it when a database server is configured). Once the pool is open, one
maintenance task per process recovers background work whose lease expired (at once, then every
``background.recover_interval_s``) and deletes what is older than ``retention_days`` (every
``sweep_interval_s``), and the work given to ``serve_background`` starts running queued responses.
All state is in PostgreSQL: any replica answers any id.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import psycopg

from gateway.kernel.config.sections.responses import ResponsesSettings
from gateway.kernel.errors import GatewayError
from gateway.kernel.observability.logging import JsonLog
from gateway.services.responses.conversations import PostgresConversationStore
from gateway.services.responses.pool import StatePool
from gateway.services.responses.queue import BackgroundQueue, Recovered
from gateway.services.responses.responses import PostgresResponseStore
from gateway.services.responses.retention import Swept, sweep
from gateway.services.responses.runner import BackgroundRunner, Work

if TYPE_CHECKING:
    from gateway.services.stores.postgres import Postgres

_DAY_S = 86_400
_MAX_RETRY_S = 30.0


class ResponseState:
    def __init__(self, open_postgres: Callable[[], Awaitable[Postgres]], settings: ResponsesSettings,
                 log: JsonLog | None = None) -> None:
        self.settings = settings
        self._log = log
        self._pool = StatePool(open_postgres, on_open=self._opened)
        self.responses = PostgresResponseStore(self._pool, settings.max_chain_depth)
        self.conversations = PostgresConversationStore(self._pool)
        self.queue = BackgroundQueue(self._pool)
        self._maintenance: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self._runners: list[BackgroundRunner] = []
        self._work: Work | None = None
        self._opener: asyncio.Task[None] | None = None

    async def open(self) -> None:
        await self._pool.pool()

    async def run_background(self, work: Work) -> BackgroundRunner:
        """Start a runner for queued background responses in this process (stopped by ``aclose``)."""
        await self.open()
        return self._start_runner(work)

    def serve_background(self, work: Work) -> None:
        """Run queued background responses in this process with ``work`` from the moment the state is
        open: now if it is, else on its first use. With ``background.concurrency: 0``, never."""
        if self.settings.background.concurrency == 0:
            return
        self._work = work
        if self._pool.is_open:
            self._start_runner(work)

    def open_soon(self) -> None:
        """Open in a task of its own, retrying while the database does not answer (a configured server:
        recovery and the runner start without waiting for a request)."""
        if self._opener is None:
            self._opener = asyncio.create_task(self._open_until_open())

    def wake(self) -> None:
        """Look for queued work now (something was just queued)."""
        for runner in self._runners:
            runner.wake()

    def _start_runner(self, work: Work) -> BackgroundRunner:
        runner = BackgroundRunner(self.queue, work, self.settings.background, log=self._log)
        self._runners.append(runner)
        runner.start()
        return runner

    async def _open_until_open(self) -> None:
        delay = 1.0
        while not self._stopping.is_set():
            try:
                await self.open()
                return
            except (GatewayError, psycopg.Error) as exc:
                if self._log is not None:
                    message = exc.message if isinstance(exc, GatewayError) else type(exc).__name__
                    self._log.warning("responses_open_failed", error=message, retry_in_s=delay)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), delay)
            delay = min(delay * 2, _MAX_RETRY_S)

    async def sweep(self, now: float | None = None) -> Swept:
        if self.settings.retention_days <= 0:
            return Swept(0, 0)
        cutoff = int((time.time() if now is None else now) - self.settings.retention_days * _DAY_S)
        return await sweep(self._pool, cutoff)

    async def recover(self) -> Recovered:
        return await self.queue.recover(self.settings.background.max_attempts)

    def _opened(self) -> None:
        if self._stopping.is_set():
            return
        self._maintenance = asyncio.create_task(self._maintain())
        if self._work is not None:
            self._start_runner(self._work)

    async def _maintain(self) -> None:
        """Recover and sweep when due, until ``aclose`` (which signals rather than cancels a query)."""
        s = self.settings
        due = {"recover": 0.0, "sweep": 0.0}
        every = {"recover": s.background.recover_interval_s, "sweep": s.sweep_interval_s}
        while not self._stopping.is_set():
            for name, at in due.items():
                if time.monotonic() >= at and not self._stopping.is_set():
                    await self._quietly(name)
                    due[name] = time.monotonic() + every[name]
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), max(0.0, min(due.values()) - time.monotonic()))

    async def _quietly(self, name: str) -> None:
        try:
            if name == "recover":
                r = await self.recover()
                fields = {"requeued": r.requeued, "failed": r.failed}
            else:
                w = await self.sweep()
                fields = {"responses": w.responses, "conversations": w.conversations}
        except (GatewayError, psycopg.Error) as exc:
            if self._log is not None:
                self._log.error(f"responses_{name}_failed", error=type(exc).__name__)
            return
        if self._log is not None and any(fields.values()):
            self._log.info(f"responses_{name}", **fields)

    async def aclose(self) -> None:
        """Stop opening, the runners (their jobs go back to the queue) and the maintenance task; the pool
        stays. Once closed, nothing starts again (a second call does nothing)."""
        self._stopping.set()
        if self._opener is not None:
            await asyncio.gather(self._opener, return_exceptions=True)
            self._opener = None
        runners, self._runners = self._runners, []
        for runner in runners:
            await runner.aclose()
        if self._maintenance is not None:
            await asyncio.gather(self._maintenance, return_exceptions=True)
            self._maintenance = None

