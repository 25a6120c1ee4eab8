"""Batch priority: how many batch lines one replica runs at a time.

``concurrency`` while the replica serves no interactive request, ``busy_concurrency`` while it does
(``serving()``: the requests in flight through the HTTP front, which batch lines never are). Waiting
lines queue in order; a finished line hands its slot to the next, and while lines wait one ticker looks
every ``TICK_S`` whether the replica went idle (more slots), so waiting costs no polling per line.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator, Callable

TICK_S = 0.01


class PriorityGate:
    def __init__(self, concurrency: int, busy_concurrency: int, serving: Callable[[], int]) -> None:
        self._idle, self._busy = concurrency, min(busy_concurrency, concurrency)
        self._serving = serving
        self._waiting: deque[asyncio.Future[None]] = deque()
        self._ticker: asyncio.Task[None] | None = None
        self.running = 0

    def limit(self) -> int:
        return self._busy if self._serving() > 0 else self._idle

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        await self._acquire()
        try:
            yield
        finally:
            self.running -= 1
            self._wake()

    async def _acquire(self) -> None:
        if not self._waiting and self.running < self.limit():
            self.running += 1
            return
        turn = asyncio.get_running_loop().create_future()
        self._waiting.append(turn)
        if self._ticker is None:
            self._ticker = asyncio.create_task(self._tick())
        try:
            await turn  # the slot is counted for us when the turn is given
        except asyncio.CancelledError:
            if turn.done() and not turn.cancelled():
                self.running -= 1
                self._wake()
            raise

    def _wake(self) -> None:
        while self._waiting and self.running < self.limit():
            turn = self._waiting.popleft()
            if not turn.done():
                self.running += 1
                turn.set_result(None)

    async def _tick(self) -> None:
        try:
            while self._waiting:
                await asyncio.sleep(TICK_S)
                self._wake()
        finally:
            self._ticker = None
