"""Feature module: the limiter (Redis with a fallback, or in process), the spend ledger and its
flush task, and ``GET /admin/usage`` (admin role)."""

from __future__ import annotations

import asyncio
import contextlib

from starlette.requests import Request
from starlette.routing import BaseRoute, Route

from gateway.kernel.context import StateKey
from gateway.runtime import Runtime
from gateway.services.limits.fallback import FallbackLimiter
from gateway.services.limits.ledger import SPEND_LEDGER, SpendLedger
from gateway.services.limits.limiter import Limiter, LocalLimiter

LIMITER: StateKey[Limiter] = StateKey("rate_limiter")


def make_limiter(runtime: Runtime) -> Limiter:
    settings = runtime.settings.limits
    client = runtime.redis() if settings.backend != "local" else None
    if client is None:
        if settings.backend == "redis":
            raise RuntimeError("limits.backend: redis needs redis.url")
        return LocalLimiter()
    from gateway.services.limits.redis_limiter import RedisLimiter

    lean = runtime.resp()
    assert lean is not None  # redis.url is set, or there would be no client above
    return FallbackLimiter(RedisLimiter(lean), LocalLimiter(), settings.on_redis_error,
                           settings.redis_retry_s, runtime.log)


async def start(runtime: Runtime) -> None:
    settings = runtime.settings.limits
    client = runtime.redis() if settings.backend != "local" else None
    ledger = SpendLedger(client, settings.prices, settings.tenant_budgets_usd, runtime.log)
    runtime.provide(LIMITER, make_limiter(runtime))
    runtime.provide(SPEND_LEDGER, ledger)
    if client is not None:
        task = asyncio.create_task(ledger.run(settings.flush_interval_s))

        async def stop() -> None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await ledger.flush()

        runtime.resources.push_async_callback(stop)


def routes(runtime: Runtime) -> list[BaseRoute]:
    from gateway.features.identity import admin_guard

    async def usage(request: Request) -> dict[str, object]:
        ledger = runtime.require(SPEND_LEDGER)
        q = request.query_params
        return await ledger.snapshot(tenant=q.get("tenant"), key_id=q.get("key_id"))

    return [Route("/admin/usage", admin_guard(runtime).wrap(usage), methods=["GET"])]
