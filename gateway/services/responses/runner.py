"""Runs background responses claimed from the durable queue (``queue.py``), a few at a time.

``work(tenant, response_id, emit)`` produces one response: it may ``await emit(event)`` for each
stream event (numbered and stored here, so a client can resume with ``starting_after``) and returns
the finished Response object. While it runs, its lease is renewed about once a second; a renewal that
fails (the response was cancelled or deleted, or the lease was taken back) stops it. A run that raises
fails its response with a reason; a run stopped by shutdown gives its job back to the queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import secrets
import socket
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from gateway.kernel.config.sections.responses import BackgroundSettings
from gateway.kernel.errors import GatewayError
from gateway.kernel.observability.logging import JsonLog
from gateway.services.responses.queue import FINAL_EVENTS, BackgroundQueue, Job

Emit = Callable[[dict[str, Any]], Awaitable[None]]
Work = Callable[[str, str, Emit], Coroutine[Any, Any, dict[str, Any]]]
_FINAL_STATUS = {"completed": "response.completed", "failed": "response.failed",
                 "incomplete": "response.incomplete"}


class EventSink:
    """Numbers one run's events and stores them; events emitted while a write is in flight go in the
    next write together."""

    def __init__(self, queue: BackgroundQueue, owner: str, job: Job) -> None:
        self._queue = queue
        self._owner = owner
        self._job = job
        self._next = job.next_event
        self._pending: list[dict[str, Any]] = []
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()
        self.final_sent = False

    async def emit(self, event: dict[str, Any]) -> None:
        self._pending.append({**event, "sequence_number": self._next})
        self._next += 1
        self.final_sent = self.final_sent or event.get("type") in FINAL_EVENTS
        self._wake.set()

    async def pump(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            await self.flush()

    async def flush(self) -> None:
        async with self._lock:
            while self._pending:
                batch, self._pending = self._pending, []
                await self._queue.append_events(self._owner, self._job, batch[0]["sequence_number"], batch)


class BackgroundRunner:
    def __init__(self, queue: BackgroundQueue, work: Work, settings: BackgroundSettings, *,
                 log: JsonLog | None = None, owner: str | None = None) -> None:
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self._queue = queue
        self._work = work
        self._settings = settings
        self._log = log
        self._running: dict[tuple[str, str], asyncio.Task[None]] = {}
        self._wake = asyncio.Event()
        self._loop: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._loop is None:
            self._loop = asyncio.create_task(self._claim_loop())

    def wake(self) -> None:
        """Look for queued work now (after an enqueue in this process) rather than at the next poll."""
        self._wake.set()

    @property
    def running(self) -> int:
        return len(self._running)

    async def aclose(self) -> None:
        tasks = [t for t in (self._loop, *self._running.values()) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._loop = None

    async def _claim_loop(self) -> None:
        s = self._settings
        while True:
            free = s.concurrency - len(self._running)
            if free > 0:
                for job in await self._claim(free):
                    task = asyncio.create_task(self._execute(job))
                    key = (job.tenant, job.response_id)
                    self._running[key] = task
                    task.add_done_callback(functools.partial(self._done, key))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), s.poll_interval_s)
            self._wake.clear()

    def _done(self, key: tuple[str, str], _: asyncio.Task[None]) -> None:
        self._running.pop(key, None)
        self._wake.set()

    async def _claim(self, limit: int) -> list[Job]:
        try:
            return await self._queue.claim(self.owner, limit, self._settings.lease_s)
        except GatewayError as err:
            self._note("background_claim_failed", error=err.message)
            return []

    async def _execute(self, job: Job) -> None:
        sink = EventSink(self._queue, self.owner, job)
        pump = asyncio.create_task(sink.pump())
        work = asyncio.create_task(self._work(job.tenant, job.response_id, sink.emit))
        keeper = asyncio.create_task(self._keep(job))
        try:
            await asyncio.wait({work, keeper}, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:  # shutdown: the job goes back to the queue
            await _stop(work, keeper, pump)
            with contextlib.suppress(GatewayError):
                await sink.flush()
                await self._queue.release(self.owner, job)
            raise
        await _stop(keeper, pump, *([] if work.done() else [work]))
        try:
            await sink.flush()
            await self._conclude(job, work, sink)
        except GatewayError as err:  # the store is down: the lease expires and recovery takes over
            self._note("background_finish_failed", response_id=job.response_id, error=err.message)

    async def _conclude(self, job: Job, work: asyncio.Task[dict[str, Any]], sink: EventSink) -> None:
        if work.cancelled():
            self._note("background_stopped", response_id=job.response_id)
            return
        error = work.exception()
        if error is None:
            response = work.result()
            status = response.get("status")
            if status in _FINAL_STATUS:
                if not sink.final_sent:
                    await sink.emit({"type": _FINAL_STATUS[str(status)], "response": response})
                    await sink.flush()
                await self._queue.finish(self.owner, job, response)
                return
            message = f"The background run ended without a final status ({str(status)[:32]!r})."
        elif isinstance(error, GatewayError):
            message = error.message
        else:
            message = f"The background run failed ({type(error).__name__})."
        self._note("background_failed", response_id=job.response_id, error=message)
        await self._queue.fail(self.owner, job, message)

    async def _keep(self, job: Job) -> None:
        """Renew the lease until the run should stop (returns then)."""
        interval = min(self._settings.lease_s / 3, 1.0)
        while True:
            await asyncio.sleep(interval)
            try:
                if not await self._queue.renew(self.owner, job, self._settings.lease_s):
                    return
            except GatewayError as err:
                self._note("background_renew_failed", response_id=job.response_id, error=err.message)

    def _note(self, event: str, **fields: Any) -> None:
        if self._log is not None:
            self._log.warning(event, **fields)


async def _stop(*tasks: asyncio.Task[Any]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
