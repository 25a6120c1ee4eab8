"""Redis first; when Redis fails, the configured behaviour for ``redis_retry_s``: local or deny.

The client's 50 ms timeouts bound the first failure; after it, requests skip Redis entirely
until the retry time, so an outage costs one slow request per ``redis_retry_s``, never a hang.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Literal

from redis.exceptions import RedisError

from gateway.kernel.errors import RateLimited
from gateway.kernel.observability.logging import JsonLog
from gateway.services.limits.limiter import Bucket, Limiter, Outcome


class FallbackLimiter:
    def __init__(
        self, primary: Limiter, local: Limiter, mode: Literal["local", "deny"], retry_s: float, log: JsonLog
    ) -> None:
        self._primary = primary
        self._local = local
        self._mode = mode
        self._retry_s = retry_s
        self._log = log
        self._down_until = 0.0

    def _fallback(self) -> Limiter:
        if self._mode == "deny":
            raise RateLimited(
                "Rate limits cannot be checked right now; retry shortly.",
                code="rate_limiter_unavailable", headers={"retry-after": str(max(1, round(self._retry_s)))},
            )
        return self._local

    def _failed(self, exc: Exception) -> None:
        self._down_until = time.monotonic() + self._retry_s
        self._log.warning("rate_limiter_redis_down", error=type(exc).__name__, fallback=self._mode,
                          retry_s=self._retry_s)

    async def hit(self, buckets: Sequence[Bucket], window_s: int) -> Outcome:
        if time.monotonic() < self._down_until:
            return await self._fallback().hit(buckets, window_s)
        try:
            return await self._primary.hit(buckets, window_s)
        except (RedisError, OSError, TimeoutError) as exc:
            self._failed(exc)
            return await self._fallback().hit(buckets, window_s)

    async def adjust(self, names: Sequence[str], delta: int, entry: str, window_s: int) -> None:
        target = self._local if time.monotonic() < self._down_until else self._primary
        try:
            await target.adjust(names, delta, entry, window_s)
        except (RedisError, OSError, TimeoutError) as exc:
            self._failed(exc)
