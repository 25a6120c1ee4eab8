"""The atomic swap: each request runs start to end (streams included) on the generation that was current
when it arrived; a replaced generation is closed once its last in-flight request is done."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.kernel.errors import ServiceOverloaded

if TYPE_CHECKING:
    from gateway.wiring import Gateway


@dataclass(eq=False)
class Generation:
    """One configuration's request path: its gateway (backends, chain, router) and its route table."""

    number: int
    gateway: Gateway
    app: ASGIApp
    in_flight: int = 0
    retired: bool = False
    drained: asyncio.Event = field(default_factory=asyncio.Event)


class Switch:
    """Pure ASGI: sends each request to the current generation and counts it in flight there."""

    def __init__(self) -> None:
        self.current: Generation | None = None
        self._closing: set[asyncio.Task[None]] = set()
        self._retired: set[Generation] = set()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        generation = self.current
        if generation is None:
            raise ServiceOverloaded("The gateway is starting up.")
        generation.in_flight += 1
        try:
            await generation.app(scope, receive, send)
        finally:
            generation.in_flight -= 1
            if generation.retired and generation.in_flight == 0:
                generation.drained.set()

    def swap(self, generation: Generation, drain_timeout_s: float) -> Generation | None:
        """New requests go to ``generation`` from now on; the previous one closes once drained."""
        previous, self.current = self.current, generation
        if previous is not None:
            previous.retired = True
            if previous.in_flight == 0:
                previous.drained.set()
            self._retired.add(previous)
            task = asyncio.create_task(self._close(previous, drain_timeout_s))
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)
        return previous

    def draining(self) -> list[dict[str, int]]:
        """Replaced generations still finishing their in-flight requests."""
        return [{"generation": g.number, "in_flight": g.in_flight}
                for g in sorted(self._retired, key=lambda g: g.number)]

    async def _close(self, generation: Generation, timeout_s: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(generation.drained.wait(), timeout_s)
        await generation.gateway.retire()
        self._retired.discard(generation)

    async def aclose(self) -> None:
        """On shutdown (the server has drained its connections): finish closing replaced generations, then
        the current one's own parts."""
        for generation in self._retired:
            generation.drained.set()
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)
        if self.current is not None:
            await self.current.gateway.retire()
