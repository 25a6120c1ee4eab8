"""Usage and spend per key and tenant, accumulated off the request path.

``record`` (a finalizer, after the response) only adds to in-process tallies. With Redis, a
background task flushes the pending tallies every ``flush_interval_s`` in one pipeline
(``HINCRBY``/``HINCRBYFLOAT`` on ``llmops:usage:{k|t}:{id}``) and reads back the totals, so
budgets see every replica's spend within about a second. Without Redis the tallies are the
totals (per process, lost on restart).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from gateway.kernel.config.sections.limits import Price
from gateway.kernel.context import Principal, Usage
from gateway.kernel.errors import QuotaExceeded
from gateway.kernel.observability.logging import JsonLog

PREFIX = "llmops:usage:"


@dataclass(slots=True)
class Tally:
    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    spend_usd: float = 0.0
    tenant: str = ""  # for a key's tally: the tenant the key belongs to

    def add(self, other: Tally) -> None:
        self.tenant = self.tenant or other.tenant
        self.requests += other.requests
        self.prompt_tokens += other.prompt_tokens
        self.completion_tokens += other.completion_tokens
        self.spend_usd += other.spend_usd

    @classmethod
    def from_redis(cls, raw: Mapping[Any, Any]) -> Tally:
        def num(name: str) -> float:
            return float(raw.get(name.encode(), b"0"))

        tenant = raw.get(b"tenant", b"")
        return cls(int(num("requests")), int(num("prompt_tokens")), int(num("completion_tokens")), num("spend_usd"),
                   tenant.decode() if isinstance(tenant, bytes) else str(tenant))


def cost_usd(prices: Mapping[str, Price], model: str, usage: Usage | None) -> float:
    price = prices.get(model) or prices.get("*")
    if price is None or usage is None:
        return 0.0
    return (usage.prompt_tokens * price.input_per_1m + usage.completion_tokens * price.output_per_1m) / 1e6


class SpendLedger:
    def __init__(self, client: aioredis.Redis | None, prices: Mapping[str, Price],
                 tenant_budgets: Mapping[str, float], log: JsonLog) -> None:
        self._client = client
        self._prices = prices
        self._tenant_budgets = tenant_budgets
        self._log = log
        self._totals: dict[str, Tally] = {}
        self._pending: dict[str, Tally] = {}

    def record(self, principal: Principal | None, model: str, usage: Usage | None) -> None:
        if principal is None:
            return
        tally = Tally(1, usage.prompt_tokens if usage else 0, usage.completion_tokens if usage else 0,
                      cost_usd(self._prices, model, usage))
        keyed = Tally(tally.requests, tally.prompt_tokens, tally.completion_tokens, tally.spend_usd, principal.tenant)
        for scope, t in ((f"k:{principal.key_id}", keyed), (f"t:{principal.tenant}", tally)):
            self._totals.setdefault(scope, Tally()).add(t)
            if self._client is not None:
                self._pending.setdefault(scope, Tally()).add(t)

    def spent(self, scope: str) -> float:
        found = self._totals.get(scope)
        return found.spend_usd if found is not None else 0.0

    def spend_of(self, principal: Principal | None) -> dict[str, float]:
        if principal is None:
            return {}
        return {"key_usd": round(self.spent(f"k:{principal.key_id}"), 2),
                "tenant_usd": round(self.spent(f"t:{principal.tenant}"), 2)}

    def check(self, principal: Principal | None) -> None:
        """Raise ``QuotaExceeded`` (429 insufficient_quota) when the key's or tenant's budget is spent."""
        if principal is None:
            return
        key_budget = principal.budget_usd if principal is not None else None
        if key_budget is not None and self.spent(f"k:{principal.key_id}") >= key_budget:
            raise QuotaExceeded(f"Key {principal.key_id!r} has used its budget of ${key_budget:.2f}.")
        budgets = self._tenant_budgets
        tenant_budget = budgets.get(principal.tenant, budgets.get("*"))
        if tenant_budget is not None and self.spent(f"t:{principal.tenant}") >= tenant_budget:
            raise QuotaExceeded(f"Tenant {principal.tenant!r} has used its budget of ${tenant_budget:.2f}.")

    async def flush(self) -> None:
        if self._client is None:
            return
        pending, self._pending = self._pending, {}
        scopes = list(self._totals)
        writes = 0
        try:
            async with self._client.pipeline(transaction=False) as pipe:
                for scope, t in pending.items():
                    key = PREFIX + scope
                    pipe.hincrby(key, "requests", t.requests)
                    pipe.hincrby(key, "prompt_tokens", t.prompt_tokens)
                    pipe.hincrby(key, "completion_tokens", t.completion_tokens)
                    pipe.hincrbyfloat(key, "spend_usd", t.spend_usd)
                    writes += 4
                    if t.tenant:
                        pipe.hset(key, "tenant", t.tenant)
                        writes += 1
                for scope in scopes:
                    pipe.hgetall(PREFIX + scope)
                results = await pipe.execute()
        except (RedisError, OSError, TimeoutError) as exc:
            for scope, t in pending.items():
                self._pending.setdefault(scope, Tally()).add(t)
            self._log.warning("usage_flush_failed", error=type(exc).__name__, scopes=len(pending))
            return
        for scope, raw in zip(scopes, results[writes:], strict=True):
            fresh = Tally.from_redis(raw)
            fresh.add(self._pending.get(scope, Tally()))
            self._totals[scope] = fresh

    async def run(self, interval_s: float) -> None:
        while True:
            await asyncio.sleep(interval_s)
            await self.flush()

    async def snapshot(self, tenant: str | None = None, key_id: str | None = None) -> dict[str, Any]:
        """``{"keys": {id: tally}, "tenants": {name: tally}}``, every replica's usage with Redis."""
        totals = dict(self._totals)
        if self._client is not None:
            await self.flush()
            keys = [k async for k in self._client.scan_iter(match=PREFIX + "*", count=500)]
            values = [await self._client.hgetall(k) for k in keys]
            totals = {k.decode()[len(PREFIX) :]: Tally.from_redis(v) for k, v in zip(keys, values, strict=True)}
        out: dict[str, dict[str, Any]] = {"keys": {}, "tenants": {}}
        for scope, tally in sorted(totals.items()):
            kind, _, name = scope.partition(":")
            if kind == "k" and key_id in (None, name) and tenant in (None, tally.tenant):
                out["keys"][name] = asdict(tally)
            elif kind == "t" and tenant in (None, name) and key_id is None:
                out["tenants"][name] = {k: v for k, v in asdict(tally).items() if k != "tenant"}
        return out

