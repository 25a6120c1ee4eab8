"""Limiters against a real Redis: atomic check-and-increment, reconcile, fallback; ledger and budgets."""

from __future__ import annotations

import asyncio
import io
import time
import uuid

import pytest
import redis.asyncio as aioredis

from gateway.kernel.config.sections.limits import Price
from gateway.kernel.context import Principal, Usage
from gateway.kernel.errors import QuotaExceeded, RateLimited
from gateway.kernel.observability.logging import JsonLog
from gateway.services.limits.fallback import FallbackLimiter
from gateway.services.limits.ledger import SpendLedger
from gateway.services.limits.limiter import Bucket, LocalLimiter
from gateway.services.limits.redis_limiter import RedisLimiter
from gateway.services.stores.resp import RespClient
from middleware.limits.headers import duration, rate_headers


def client(url: str, timeout_ms: int = 200) -> aioredis.Redis:
    return aioredis.Redis.from_url(url, socket_timeout=timeout_ms / 1000, socket_connect_timeout=0.2)


def lean(url: str, timeout_ms: int = 200) -> RespClient:
    return RespClient(url, timeout_s=timeout_ms / 1000, connect_timeout_s=0.2)


async def test_local_limiter_refuses_without_incrementing() -> None:
    lim = LocalLimiter()
    buckets = [Bucket("k:a:r", "requests", 2, 1), Bucket("k:a:t", "tokens", 100, 40)]
    assert (await lim.hit(buckets, 60)).allowed
    second = await lim.hit(buckets, 60)
    assert second.allowed and second.counts == (2, 80)
    third = await lim.hit(buckets, 60)
    assert not third.allowed and third.refused == 0 and third.counts == (2, 80)
    headers = rate_headers(buckets, second)
    assert headers["x-ratelimit-remaining-requests"] == "0" and headers["x-ratelimit-remaining-tokens"] == "20"


async def test_redis_limiter_is_atomic_under_concurrency(redis_url: str) -> None:
    lim = RedisLimiter(lean(redis_url))
    name = f"k:{uuid.uuid4().hex}"
    buckets = [Bucket(f"{name}:r", "requests", 10, 1), Bucket(f"{name}:t", "tokens", 10_000, 5)]
    outcomes = await asyncio.gather(*(lim.hit(buckets, 60) for _ in range(50)))
    assert sum(o.allowed for o in outcomes) == 10
    admitted = next(o for o in outcomes if o.allowed)
    await lim.adjust([f"{name}:t"], -20, admitted.entry, 60)
    await lim.flush()
    again = await lim.hit([Bucket(f"{name}:t", "tokens", 10_000, 0)], 60)
    assert again.counts == (30,)


async def test_redis_script_reloads_after_flush(redis_url: str) -> None:
    c = client(redis_url)
    lim = RedisLimiter(lean(redis_url))
    assert (await lim.hit([Bucket(f"x:{uuid.uuid4().hex}:r", "requests", 5, 1)], 60)).allowed
    await c.script_flush()
    assert (await lim.hit([Bucket(f"x:{uuid.uuid4().hex}:r", "requests", 5, 1)], 60)).allowed


async def test_fallback_when_redis_is_down() -> None:
    dead = RedisLimiter(lean("redis://127.0.0.1:9", timeout_ms=50))
    buckets = [Bucket("k:z:r", "requests", 1, 1)]
    local = FallbackLimiter(dead, LocalLimiter(), "local", 5, JsonLog(io.BytesIO()))
    assert (await local.hit(buckets, 60)).allowed
    assert not (await local.hit(buckets, 60)).allowed  # served by the local limiter, no second Redis try
    deny = FallbackLimiter(dead, LocalLimiter(), "deny", 5, JsonLog(io.BytesIO()))
    with pytest.raises(RateLimited) as info:
        await deny.hit(buckets, 60)
    assert info.value.code == "rate_limiter_unavailable"


async def wait_until_late_in_window(window_s: int) -> None:
    """Until 90 % of a clock window has passed (where a fixed window is about to start again)."""
    await asyncio.sleep((window_s * 0.9 - time.time() % window_s) % window_s)


@pytest.mark.parametrize("shared", [False, True], ids=["local", "redis"])
async def test_no_window_edge_to_cross(shared: bool, redis_url: str) -> None:
    """Full just before a clock window ends, still full just after it: the limit is over any ``window_s``."""
    lim: LocalLimiter | RedisLimiter = RedisLimiter(lean(redis_url)) if shared else LocalLimiter()
    buckets = [Bucket(f"k:{uuid.uuid4().hex}:r", "requests", 3, 1)]
    await wait_until_late_in_window(3)
    assert all([(await lim.hit(buckets, 3)).allowed for _ in range(3)])
    await asyncio.sleep(0.6)  # past the clock window's end, well inside the sliding one
    refused = await lim.hit(buckets, 3)
    assert not refused.allowed and refused.counts == (3,) and 1.0 < refused.reset_s <= 3.0


@pytest.mark.parametrize("shared", [False, True], ids=["local", "redis"])
async def test_a_refusal_says_when_the_request_would_fit(shared: bool, redis_url: str) -> None:
    lim: LocalLimiter | RedisLimiter = RedisLimiter(lean(redis_url)) if shared else LocalLimiter()
    name = f"k:{uuid.uuid4().hex}:t"
    small, big = [Bucket(name, "tokens", 100, 30)], [Bucket(name, "tokens", 100, 70)]
    assert (await lim.hit(small, 60)).allowed
    assert (await lim.hit(small, 60)).allowed
    refused = await lim.hit(big, 60)  # 60 in the window: 70 more needs both earlier hits gone
    assert not refused.allowed and refused.counts == (60,) and 59.0 < refused.reset_s <= 60.0
    never = await lim.hit([Bucket(name, "tokens", 100, 500)], 60)
    assert not never.allowed and never.reset_s == 60.0


async def test_replicas_on_one_redis_admit_at_most_the_limit_in_any_window(redis_url: str) -> None:
    """Two limiters (replicas), 20 per 2 s, 200 requests spread over 4 s across clock windows: at most 20 in
    any 2 s (a fixed window admitted 40 within moments of its boundary)."""
    replicas = [RedisLimiter(lean(redis_url)), RedisLimiter(lean(redis_url))]
    buckets = [Bucket(f"k:{uuid.uuid4().hex}:r", "requests", 20, 1)]
    admitted: list[tuple[float, float]] = []  # sent, answered: the check happened in between

    async def one(i: int) -> None:
        await asyncio.sleep(i * 0.02)
        sent = time.time()
        if (await replicas[i % 2].hit(buckets, 2)).allowed:
            admitted.append((sent, time.time()))

    await wait_until_late_in_window(2)
    await asyncio.gather(*(one(i) for i in range(200)))
    busiest = max(sum(1 for sent, done in admitted if start <= sent and done < start + 2) for start, _ in admitted)
    assert busiest <= 20 and len(admitted) >= 20


def test_duration_format() -> None:
    assert duration(0.2) == "1s" and duration(60) == "1m0s" and duration(125) == "2m5s"


async def test_budgets_across_ledgers_on_one_redis(redis_url: str) -> None:
    prices = {"m": Price(input_per_1m=1_000_000, output_per_1m=0)}  # $1 per prompt token
    tenant = f"t{uuid.uuid4().hex[:6]}"
    a = SpendLedger(client(redis_url), prices, {tenant: 3.0}, JsonLog(io.BytesIO()))
    b = SpendLedger(client(redis_url), prices, {tenant: 3.0}, JsonLog(io.BytesIO()))
    who = Principal(tenant=tenant, key_id=f"k{tenant}", budget_usd=10.0)
    a.record(who, "m", Usage(2, 0, 2))
    b.check(who)
    b.record(who, "m", Usage(1, 0, 1))
    await a.flush()
    await b.flush()
    await a.flush()
    with pytest.raises(QuotaExceeded) as info:
        a.check(who)
    assert info.value.code == "insufficient_quota" and info.value.status == 429
    snap = await a.snapshot(tenant=tenant)
    assert snap["tenants"][tenant]["requests"] == 2 and snap["tenants"][tenant]["spend_usd"] == 3.0
    assert list(snap["keys"]) == [f"k{tenant}"] and snap["keys"][f"k{tenant}"]["tenant"] == tenant
    other = await b.snapshot(tenant="someone-else")
    assert other == {"keys": {}, "tenants": {}}


def test_usage_filters_keys_by_their_tenant() -> None:
    import asyncio

    ledger = SpendLedger(None, {}, {}, JsonLog(io.BytesIO()))
    ledger.record(Principal(tenant="a", key_id="ka"), "m", Usage(1, 1, 2))
    ledger.record(Principal(tenant="b", key_id="kb"), "m", Usage(1, 1, 2))
    snap = asyncio.run(ledger.snapshot(tenant="a"))
    assert list(snap["keys"]) == ["ka"] and list(snap["tenants"]) == ["a"]
    by_key = asyncio.run(ledger.snapshot(key_id="kb"))
    assert list(by_key["keys"]) == ["kb"] and by_key["tenants"] == {}


def test_memory_ledger_key_budget() -> None:
    ledger = SpendLedger(None, {"*": Price(input_per_1m=0, output_per_1m=1_000_000)}, {}, JsonLog(io.BytesIO()))
    who = Principal(tenant="t", key_id="k", budget_usd=1.0)
    ledger.check(who)
    ledger.record(who, "any", Usage(0, 1, 1))
    assert ledger.spend_of(who) == {"key_usd": 1.0, "tenant_usd": 1.0}
    with pytest.raises(QuotaExceeded):
        ledger.check(who)
