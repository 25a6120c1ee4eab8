"""Where entries live: Redis (shared by replicas) or an in-process LRU (the embedded default).

A Redis that errs or is slower than its socket timeout raises ``CacheUnavailable``; the stage then
bypasses the cache. After a failure the store stays "down" for ``retry_after_s`` so a dead Redis
costs one timeout per second, not one per request.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import TYPE_CHECKING, Protocol

from redis.exceptions import RedisError

if TYPE_CHECKING:
    import redis.asyncio as aioredis

KEY_PREFIX = "llmops:cache:v1:"


class CacheUnavailable(Exception):
    """The backing store could not answer; never shown to a client."""


class CacheStore(Protocol):
    name: str

    async def get(self, key: str) -> bytes | None: ...

    async def set(self, key: str, value: bytes, ttl_s: int) -> None: ...


class MemoryStore:
    name = "memory"

    def __init__(self, max_entries: int) -> None:
        self._entries: OrderedDict[str, tuple[float, bytes]] = OrderedDict()
        self._max = max_entries

    async def get(self, key: str) -> bytes | None:
        found = self._entries.get(key)
        if found is None:
            return None
        if found[0] < time.monotonic():
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return found[1]

    async def set(self, key: str, value: bytes, ttl_s: int) -> None:
        self._entries[key] = (time.monotonic() + ttl_s, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)


class TieredStore:
    """A small in-process LRU in front of Redis. Safe because an entry never changes meaning: its
    key hashes everything that shapes the answer. ``local_ttl_s`` bounds how long a replica keeps
    serving an entry another replica has refreshed (``no-cache``)."""

    def __init__(self, local: MemoryStore, shared: CacheStore, local_ttl_s: int) -> None:
        self.name = shared.name
        self._local = local
        self._shared = shared
        self._local_ttl_s = local_ttl_s

    async def get(self, key: str) -> bytes | None:
        found = await self._local.get(key)
        if found is None:
            found = await self._shared.get(key)
            if found is not None:
                await self._local.set(key, found, self._local_ttl_s)
        return found

    async def set(self, key: str, value: bytes, ttl_s: int) -> None:
        await self._local.set(key, value, min(ttl_s, self._local_ttl_s))
        await self._shared.set(key, value, ttl_s)


class RedisStore:
    name = "redis"

    def __init__(self, client: aioredis.Redis, retry_after_s: float = 1.0) -> None:
        self._client = client
        self._retry_after_s = retry_after_s
        self._down_until = 0.0

    async def get(self, key: str) -> bytes | None:
        self._check()
        try:
            value = await self._client.get(KEY_PREFIX + key)
        except (TimeoutError, RedisError, OSError) as exc:
            raise self._failed(exc) from None
        return value if isinstance(value, bytes) else None

    async def set(self, key: str, value: bytes, ttl_s: int) -> None:
        self._check()
        try:
            await self._client.set(KEY_PREFIX + key, value, ex=ttl_s)
        except (TimeoutError, RedisError, OSError) as exc:
            raise self._failed(exc) from None

    def _check(self) -> None:
        if self._down_until and time.monotonic() < self._down_until:
            raise CacheUnavailable("redis marked down")

    def _failed(self, exc: BaseException) -> CacheUnavailable:
        self._down_until = time.monotonic() + self._retry_after_s
        return CacheUnavailable(type(exc).__name__)
