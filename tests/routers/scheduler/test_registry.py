"""Nodes from heartbeats, expired when stale, in memory and in Redis (the signed route: tests/gateway/http)."""

from __future__ import annotations

import time
from typing import Any

import pytest
import redis.asyncio as aioredis

from routers.scheduler import MemoryNodeRegistry, NodeRegistry, node_from_heartbeat
from routers.scheduler.redis_registry import RedisNodeRegistry
from tests.routers.scheduler.fakes import node

PATH = "/internal/nodes/heartbeat"


def beat(node_id: str = "n1", **extra: Any) -> dict[str, Any]:
    return {
        "node_id": node_id, "url": "http://127.0.0.1:9", "labels": {"region": "eu", "zone": "a",
                                                                     "runtimes": "http,python,shell"},
        "drivers": {"bwrap": {"available": True, "runtimes": ["python", "shell"]},
                    "docker": {"available": False, "reason": "no daemon"}},
        "free_slots": 1, "slots": 2, "datasets": ["docs"], **extra,
    }


def test_heartbeat_parsing() -> None:
    info = node_from_heartbeat(beat(), 100.0)
    assert info.drivers == ("bwrap",) and info.runtimes == ("http", "python", "shell")
    assert info.labels == {"region": "eu", "zone": "a"} and info.datasets == ("docs",)
    assert (info.slots, info.free_slots, info.last_seen) == (2, 1, 100.0)
    bad: Any
    for bad in ([], {"url": "http://x"}, beat(slots="2"), beat(datasets="docs"), beat(labels={"a": 1})):
        with pytest.raises(ValueError):
            node_from_heartbeat(bad, 0.0)


async def check_registry(registry: NodeRegistry) -> None:
    now = time.time()
    await registry.upsert(node_from_heartbeat(beat("n1"), now - 20))
    await registry.upsert(node_from_heartbeat(beat("n2"), now))
    assert [n.id for n in await registry.live(now)] == ["n2", "static-1"]
    assert await registry.claim_nonce("abc", 10)


async def test_a_node_that_misses_a_heartbeat_is_gone_within_its_interval_not_the_ttl() -> None:
    registry = MemoryNodeRegistry(15.0)
    await registry.upsert(node_from_heartbeat(beat("quick", interval_s=1.0), 100.0))
    await registry.upsert(node_from_heartbeat(beat("legacy"), 100.0))  # no interval: only the TTL applies
    assert [n.id for n in await registry.live(101.4)] == ["legacy", "quick"]
    assert [n.id for n in await registry.live(101.6)] == ["legacy"]
    assert node_from_heartbeat(beat(boot="b1"), 0.0).boot == "b1"
    for bad in ({"interval_s": "1"}, {"interval_s": -1}, {"boot": 7}, {"boot": "x" * 65}):
        with pytest.raises(ValueError):
            node_from_heartbeat(beat(**bad), 0.0)


async def test_memory_registry_expires_stale_nodes_and_keeps_static_ones() -> None:
    await check_registry(MemoryNodeRegistry(15.0, [node("static-1")]))


async def test_redis_registry_is_shared_and_rejects_replayed_nonces(redis_url: str) -> None:
    client = aioredis.from_url(redis_url)
    await client.flushdb()
    try:
        await check_registry(RedisNodeRegistry(client, 15.0, [node("static-1")]))
        replica = RedisNodeRegistry(client, 15.0)
        assert [n.id for n in await replica.live(time.time())] == ["n2"]
        assert not await replica.claim_nonce("abc", 10)
    finally:
        await client.aclose()

