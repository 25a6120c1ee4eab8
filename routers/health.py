"""Active health checks: a background task asks each backend ``ready()`` every ``interval_s``.

An unhealthy backend's deployments get no traffic until a later check passes; passive outlier
detection (the circuit breaker in ``routers.state``) covers the time between checks.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from typing import TYPE_CHECKING

from routers.registry import Deployment, ModelRegistry

if TYPE_CHECKING:
    from gateway.kernel.observability.metrics import Metrics
    from routers.backends.base import Backend


class HealthChecker:
    """An async context manager owning the checking task (closed by the runtime's exit stack)."""

    def __init__(self, registry: ModelRegistry, interval_s: float, metrics: Metrics | None = None) -> None:
        groups: dict[str, list[Deployment]] = defaultdict(list)
        backends: dict[str, Backend] = {}
        for d in registry.deployments():
            groups[d.backend.name].append(d)
            backends[d.backend.name] = d.backend
        self._groups = dict(groups)
        self._backends = backends
        self._interval = interval_s
        self._metrics = metrics
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> HealthChecker:
        if self._interval > 0 and self._backends:
            self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def check_once(self) -> dict[str, bool]:
        names = list(self._backends)
        results = await asyncio.gather(*(self._backends[n].ready() for n in names))
        for name, ok in zip(names, results, strict=True):
            for d in self._groups[name]:
                d.state.healthy = ok
            if self._metrics is not None:
                self._metrics.health_checks.labels(name, "ok" if ok else "fail").inc()
        return dict(zip(names, results, strict=True))

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            await self.check_once()
