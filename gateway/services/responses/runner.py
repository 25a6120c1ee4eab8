"""Runs background responses claimed from the durable queue (``queue.py``), a few at a time.

``work(tenant, response_id, emit)`` produces one response: it may ``await emit(event)`` for each
stream event (numbered and stored here, so a client can resume with ``starting_after``) and returns
the finished Response object. While it runs, its lease is renewed about once a second; a renewal that
fails (the response was cancelled or deleted, or the lease was taken back) stops it. A run that raises
fails its response with a reason; a run stopped by shutdown gives its job back to the queue.

The runner's own tasks (claiming, renewing, writing events) are stopped by signalling them, never by
cancelling them mid-query: a cancelled query makes psycopg cancel it on the server, which can take
seconds, during which no lease would be renewed.
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
    next write together. ``close`` writes what is left and ends the writer."""

    def __init__(self, queue: BackgroundQueue, owner: str, job: Job) -> None:
        self._queue = queue
        self._owner = owner
        self._job = job
        self._next = job.next_event
        self._pending: list[dict[str, Any]] = []
        self._wake = asyncio.Event()
        self._closing = False
        self._writer = asyncio.create_task(self._write_loop())
        self.final_sent = False

    @property
    def count(self) -> int:
        """Events emitted so far."""
        return self._next - self._job.next_event

    async def emit(self, event: dict[str, Any]) -> None:
        self._pending.append({**event, "sequence_number": self._next})
        self._next += 1
        self.final_sent = self.final_sent or event.get("type") in FINAL_EVENTS
        self._wake.set()

    async def close(self) -> None:
        """Write every pending event (raises ``GatewayError`` when the store is down)."""
        self._closing = True
        self._wake.set()
        await asyncio.shield(self._writer)

    async def _write_loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                batch, self._pending = self._pending, []
                await self._queue.append_events(self._owner, self._job, batch[0]["sequence_number"], batch)
            if self._closing:
                return


class Keeper:
    """Renews one job's lease until told to stop; ``lost`` is set when a renewal says to stop."""

    def __init__(self, runner: BackgroundRunner, job: Job) -> None:
        self._runner = runner
        self._job = job
        self._stop = asyncio.Event()
        self.lost = asyncio.Event()
        self._task = asyncio.create_task(self._renew_loop())

    async def stop(self) -> None:
        self._stop.set()
        await asyncio.shield(self._task)

    async def _renew_loop(self) -> None:
        runner, settings = self._runner, self._runner.settings
        interval = min(settings.lease_s / 3, 1.0)
        while not self._stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), interval)
            if self._stop.is_set():
                return
            try:
                if not await runner.queue.renew(runner.owner, self._job, settings.lease_s):
                    self.lost.set()
                    return
            except GatewayError as err:
                runner.note("background_renew_failed", response_id=self._job.response_id, error=err.message)


class BackgroundRunner:
    def __init__(self, queue: BackgroundQueue, work: Work, settings: BackgroundSettings, *,
                 log: JsonLog | None = None, owner: str | None = None) -> None:
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self.queue = queue
        self.settings = settings
        self._work = work
        self._log = log
        self._running: dict[tuple[str, str], asyncio.Task[None]] = {}
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
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
        """Stop claiming, then stop the runs in flight: their jobs go back to the queue."""
        self._stopping.set()
        self._wake.set()
        if self._loop is not None:
            await asyncio.shield(self._loop)
            self._loop = None
        tasks = list(self._running.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _claim_loop(self) -> None:
        while not self._stopping.is_set():
            free = self.settings.concurrency - len(self._running)
            if free > 0:
                for job in await self._claim(free):
                    task = asyncio.create_task(self._execute(job))
                    key = (job.tenant, job.response_id)
                    self._running[key] = task
                    task.add_done_callback(functools.partial(self._done, key))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.settings.poll_interval_s)
            self._wake.clear()

    def _done(self, key: tuple[str, str], _: asyncio.Task[None]) -> None:
        self._running.pop(key, None)
        self._wake.set()

    async def _claim(self, limit: int) -> list[Job]:
        try:
            return await self.queue.claim(self.owner, limit, self.settings.lease_s)
        except GatewayError as err:
            self.note("background_claim_failed", error=err.message)
            return []

    async def _execute(self, job: Job) -> None:
        sink, keeper = EventSink(self.queue, self.owner, job), Keeper(self, job)
        work = asyncio.create_task(self._work(job.tenant, job.response_id, sink.emit))
        lost = asyncio.create_task(keeper.lost.wait())
        try:
            await asyncio.wait({work, lost}, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:  # shutdown: the job goes back to the queue
            await _cancel(work, lost)
            with contextlib.suppress(GatewayError):
                await keeper.stop()
                await sink.close()
                await self.queue.release(self.owner, job)
            raise
        await _cancel(work, lost)
        try:
            await keeper.stop()
            await sink.close()
            await self._conclude(job, work, sink)
        except GatewayError as err:  # the store is down: the lease expires and recovery takes over
            self.note("background_finish_failed", response_id=job.response_id, error=err.message)

    async def _conclude(self, job: Job, work: asyncio.Task[dict[str, Any]], sink: EventSink) -> None:
        if work.cancelled():
            self.note("background_stopped", response_id=job.response_id)
            return
        error = work.exception()
        if error is None:
            response = work.result()
            status = response.get("status")
            if status in _FINAL_STATUS:
                if not sink.final_sent:
                    seq = job.next_event + sink.count
                    final = {"type": _FINAL_STATUS[str(status)], "response": response, "sequence_number": seq}
                    await self.queue.append_events(self.owner, job, seq, [final])
                await self.queue.finish(self.owner, job, response)
                return
            message = f"The background run ended without a final status ({str(status)[:32]!r})."
        elif isinstance(error, GatewayError):
            message = error.message
        else:
            message = f"The background run failed ({type(error).__name__})."
        self.note("background_failed", response_id=job.response_id, error=message)
        await self.queue.fail(self.owner, job, message)

    def note(self, event: str, **fields: Any) -> None:
        if self._log is not None:
            self._log.warning(event, **fields)


async def _cancel(*tasks: asyncio.Task[Any]) -> None:
    """Cancel the run (and the lease watch); the run is the caller's code, cancelled wherever it is."""
    for task in tasks:
        if not task.done():
            task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
