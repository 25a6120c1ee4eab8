"""The shared limiter: one Lua script checks every bucket's sliding window and logs the hit in all of
them atomically, on Redis's clock.

A bucket is a sorted set of hits by time (``llmops:rl:{bucket}:z``) and a hash of their costs with the
running total (``llmops:rl:{bucket}:h``, field ``_total``); hits older than the window are dropped as the
next check passes (each hit is removed once), and both keys expire after a window without hits. So a
limit holds across any number of replicas on one Redis, over any 60 s, not per clock minute. The
script is sent once (``SCRIPT LOAD``) and called by ``EVALSHA``; a missing script (Redis restarted) is
reloaded transparently. Commands go through the lean pipelined client (``gateway.services.stores.resp``):
the check is on every request's path, one round trip.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Sequence
from itertools import count
from typing import Any

from redis.exceptions import NoScriptError, RedisError

from gateway.services.limits.limiter import Bucket, Outcome
from gateway.services.stores.resp import RespClient

# KEYS: per bucket its sorted set and its hash. ARGV[1]: window ms; ARGV[2]: the hit's id; ARGV[2i+1],
# ARGV[2i+2]: limit and cost of bucket i. Returns {refused index (0 = allowed), reset ms, total_1, ...}.
HIT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local win, entry = tonumber(ARGV[1]), ARGV[2]
local n = #KEYS / 2
local totals = {}
for i = 1, n do
  local z, h = KEYS[2 * i - 1], KEYS[2 * i]
  local total = tonumber(redis.call('HGET', h, '_total') or '0')
  local gone = redis.call('ZRANGEBYSCORE', z, '-inf', now - win)
  if #gone > 0 then
    for _, m in ipairs(gone) do
      total = total - tonumber(redis.call('HGET', h, m) or '0')
      redis.call('HDEL', h, m)
    end
    redis.call('ZREMRANGEBYSCORE', z, '-inf', now - win)
    redis.call('HSET', h, '_total', total)
  end
  totals[i] = total
end
for i = 1, n do
  local limit, cost = tonumber(ARGV[2 * i + 1]), tonumber(ARGV[2 * i + 2])
  if totals[i] + cost > limit then
    local need, freed, wait = totals[i] + cost - limit, 0, win
    local hits = redis.call('ZRANGE', KEYS[2 * i - 1], 0, -1, 'WITHSCORES')
    for j = 1, #hits, 2 do
      freed = freed + tonumber(redis.call('HGET', KEYS[2 * i], hits[j]) or '0')
      if freed >= need then
        wait = tonumber(hits[j + 1]) + win - now
        break
      end
    end
    local out = {i, wait}
    for k = 1, n do out[k + 2] = totals[k] end
    return out
  end
end
local wait = win
for i = 1, n do
  local z, h = KEYS[2 * i - 1], KEYS[2 * i]
  local cost = tonumber(ARGV[2 * i + 2])
  redis.call('ZADD', z, now, entry)
  redis.call('HSET', h, entry, cost)
  totals[i] = redis.call('HINCRBY', h, '_total', cost)
  redis.call('PEXPIRE', z, win)
  redis.call('PEXPIRE', h, win)
  local first = redis.call('ZRANGE', z, 0, 0, 'WITHSCORES')
  local w = tonumber(first[2]) + win - now
  if w < wait then wait = w end
end
local out = {0, wait}
for k = 1, n do out[k + 2] = totals[k] end
return out
"""
# KEYS: hashes; ARGV[1]: the hit's id; ARGV[2]: delta. A hit that left its window is not corrected.
ADJUST = """
for i = 1, #KEYS do
  if redis.call('HEXISTS', KEYS[i], ARGV[1]) == 1 then
    redis.call('HINCRBY', KEYS[i], ARGV[1], ARGV[2])
    redis.call('HINCRBY', KEYS[i], '_total', ARGV[2])
  end
end
return 0
"""
PREFIX = "llmops:rl:"
ADJUST_EVERY_S = 0.05


class RedisLimiter:
    def __init__(self, client: RespClient) -> None:
        self._client = client
        self._shas: dict[str, str] = {}
        self._deltas: dict[tuple[str, tuple[str, ...]], int] = {}
        self._flusher: asyncio.Task[None] | None = None
        self._prefix = os.urandom(6).hex()  # hit ids unique across replicas
        self._ids = count()

    async def hit(self, buckets: Sequence[Bucket], window_s: int) -> Outcome:
        keys: list[str] = []
        args: list[int | str] = [window_s * 1000, f"{self._prefix}{next(self._ids)}"]
        for b in buckets:
            keys += [f"{PREFIX}{b.name}:z", f"{PREFIX}{b.name}:h"]
            args += [b.limit, b.cost]
        raw = list(await self._eval(HIT, keys, args))
        refused, reset_ms, counts = int(raw[0]), int(raw[1]), tuple(int(c) for c in raw[2:])
        return Outcome(refused == 0, counts, str(args[1]) if refused == 0 else "", reset_ms / 1000, refused - 1)

    async def _eval(self, script: str, keys: list[str], args: Sequence[int | str]) -> Any:
        sha = self._shas.get(script)
        if sha is None:
            sha = self._shas[script] = (await self._client.execute("SCRIPT", "LOAD", script)).decode()
        try:
            result = await self._client.execute("EVALSHA", sha, len(keys), *keys, *args)
        except NoScriptError:
            self._shas.pop(script, None)
            return await self._eval(script, keys, args)
        return result

    async def adjust(self, names: Sequence[str], delta: int, entry: str, window_s: int) -> None:
        """Reconciliations are summed per hit and sent every ``ADJUST_EVERY_S``, issued together (the client
        pipelines them): one Redis round trip per request on its path (the check), not two."""
        if delta == 0 or not names or not entry:
            return
        key = (entry, tuple(names))
        self._deltas[key] = self._deltas.get(key, 0) + delta
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush_later())

    async def _flush_later(self) -> None:
        await asyncio.sleep(ADJUST_EVERY_S)
        with contextlib.suppress(RedisError, OSError, TimeoutError):  # an outage drops reconciliations
            await self.flush()

    async def flush(self) -> None:
        deltas, self._deltas = self._deltas, {}
        await asyncio.gather(*(self._eval(ADJUST, [f"{PREFIX}{name}:h" for name in names], [entry, delta])
                               for (entry, names), delta in deltas.items()))
