"""The shared limiter: one Lua script checks every bucket and increments them all atomically.

Counters are ``llmops:rl:{bucket}:{window}`` with a TTL of two windows, so a limit holds across
any number of replicas on one Redis. The script is sent once (``SCRIPT LOAD``) and called by
``EVALSHA``; a missing script (Redis restarted) is reloaded transparently. Commands go through the
lean pipelined client (``gateway.services.stores.resp``): the check is on every request's path.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence

from redis.exceptions import NoScriptError, RedisError

from gateway.services.limits.limiter import Bucket, Outcome, window_of
from gateway.services.stores.resp import RespClient

# KEYS: counters. ARGV[1]: ttl ms; ARGV[2i], ARGV[2i+1]: limit and cost of KEYS[i].
# Returns {refused index (0 = allowed), count_1, ..., count_n}.
HIT = """
local n = #KEYS
local counts = {}
for i = 1, n do counts[i] = tonumber(redis.call('GET', KEYS[i]) or '0') end
for i = 1, n do
  if counts[i] + tonumber(ARGV[2 * i + 1]) > tonumber(ARGV[2 * i]) then
    table.insert(counts, 1, i)
    return counts
  end
end
for i = 1, n do
  counts[i] = redis.call('INCRBY', KEYS[i], ARGV[2 * i + 1])
  if counts[i] == tonumber(ARGV[2 * i + 1]) then redis.call('PEXPIRE', KEYS[i], ARGV[1]) end
end
table.insert(counts, 1, 0)
return counts
"""
PREFIX = "llmops:rl:"
ADJUST_EVERY_S = 0.05


class RedisLimiter:
    def __init__(self, client: RespClient) -> None:
        self._client = client
        self._sha: str | None = None
        self._deltas: dict[str, int] = {}
        self._ttl_ms = 120_000
        self._flusher: asyncio.Task[None] | None = None

    async def hit(self, buckets: Sequence[Bucket], window_s: int) -> Outcome:
        window, reset_s = window_of(time.time(), window_s)
        keys = [f"{PREFIX}{b.name}:{window}" for b in buckets]
        args: list[int] = [window_s * 2000]
        for b in buckets:
            args += [b.limit, b.cost]
        raw = await self._eval(keys, args)
        refused, counts = int(raw[0]), tuple(int(c) for c in raw[1:])
        return Outcome(refused == 0, counts, window, reset_s, refused - 1)

    async def _eval(self, keys: list[str], args: list[int]) -> list[int]:
        if self._sha is None:
            self._sha = (await self._client.execute("SCRIPT", "LOAD", HIT)).decode()
        try:
            result = await self._client.execute("EVALSHA", self._sha, len(keys), *keys, *args)
        except NoScriptError:
            self._sha = None
            return await self._eval(keys, args)
        return list(result)

    async def adjust(self, names: Sequence[str], delta: int, window: int, window_s: int) -> None:
        """Reconciliations are summed per counter and sent every ``ADJUST_EVERY_S`` in one pipeline:
        one Redis round trip per request (the check), not two."""
        if delta == 0 or not names:
            return
        for name in names:
            key = f"{PREFIX}{name}:{window}"
            self._deltas[key] = self._deltas.get(key, 0) + delta
        self._ttl_ms = window_s * 2000
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush_later())

    async def _flush_later(self) -> None:
        await asyncio.sleep(ADJUST_EVERY_S)
        with contextlib.suppress(RedisError, OSError, TimeoutError):  # an outage drops reconciliations
            await self.flush()

    async def flush(self) -> None:
        deltas, self._deltas = self._deltas, {}
        if not deltas:
            return
        # Issued together: the client pipelines them on its one connection.
        sent = []
        for key, delta in deltas.items():
            sent += [self._client.execute("INCRBY", key, delta), self._client.execute("PEXPIRE", key, self._ttl_ms)]
        await asyncio.gather(*sent)
