"""The node registry in Redis: one hash of node JSON, plus ``SET NX`` nonces against replays."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING

from routers.scheduler.nodes import NodeInfo, node_from_json
from routers.scheduler.registry import merged

if TYPE_CHECKING:
    import redis.asyncio as aioredis

NODES_KEY = "llmops:tools:nodes"
NONCE_PREFIX = "llmops:tools:nonce:"


class RedisNodeRegistry:
    def __init__(self, client: aioredis.Redis, ttl_s: float, static: Sequence[NodeInfo] = ()) -> None:
        self._redis = client
        self._ttl = ttl_s
        self._static = tuple(static)

    async def upsert(self, node: NodeInfo) -> None:
        await self._redis.hset(NODES_KEY, node.id, json.dumps(node.to_json()))

    async def live(self, now: float) -> list[NodeInfo]:
        raw = await self._redis.hgetall(NODES_KEY)
        fresh: list[NodeInfo] = []
        stale: list[str] = []
        for key, value in raw.items():
            node = node_from_json(json.loads(value))
            if node.fresh(now, self._ttl):
                fresh.append(node)
            else:
                stale.append(_text(key))
        if stale:
            await self._redis.hdel(NODES_KEY, *stale)
        return merged(self._static, fresh)

    async def claim_nonce(self, nonce: str, ttl_s: float) -> bool:
        return bool(await self._redis.set(NONCE_PREFIX + nonce, b"1", nx=True, ex=max(1, int(ttl_s))))


def _text(key: bytes | str) -> str:
    return key.decode() if isinstance(key, bytes) else key
