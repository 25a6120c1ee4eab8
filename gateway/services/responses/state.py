"""Everything the Responses and Conversations endpoints keep, on the shared PostgreSQL pool.

Nothing is opened until first used (the default configuration starts without PostgreSQL). Once the
pool is open, one maintenance task per process recovers background work whose lease expired (at once,
then every ``background.recover_interval_s``) and deletes what is older than ``retention_days``
(every ``sweep_interval_s``). All state is in PostgreSQL: any replica answers any id.
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

    async def open(self) -> None:
        await self._pool.pool()

    async def run_background(self, work: Work) -> BackgroundRunner:
        """Start a runner for queued background responses in this process (stopped by ``aclose``)."""
        await self.open()
        runner = BackgroundRunner(self.queue, work, self.settings.background, log=self._log)
        self._runners.append(runner)
        runner.start()
        return runner

    async def sweep(self, now: float | None = None) -> Swept:
        if self.settings.retention_days <= 0:
            return Swept(0, 0)
        cutoff = int((time.time() if now is None else now) - self.settings.retention_days * _DAY_S)
        return await sweep(self._pool, cutoff)

    async def recover(self) -> Recovered:
        return await self.queue.recover(self.settings.background.max_attempts)

    def _opened(self) -> None:
        self._maintenance = asyncio.create_task(self._maintain())

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
        """Stop the runners (their jobs go back to the queue) and the maintenance task; the pool stays."""
        runners, self._runners = self._runners, []
        for runner in runners:
            await runner.aclose()
        if self._maintenance is not None:
            self._stopping.set()
            await asyncio.gather(self._maintenance, return_exceptions=True)
            self._maintenance = None

