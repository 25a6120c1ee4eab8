"""Limits stage: budget check, then one atomic check-and-log of every applicable bucket (sliding windows).

Tokens are estimated up front (prompt chars/4 + max_tokens) and reconciled with the real usage
when the response completes (a finalizer; streams set ``ctx.usage`` at their end). The same
finalizer records usage and spend in the ledger, off the request path.
"""

from __future__ import annotations

import math

from gateway.kernel.chain import Handler
from gateway.kernel.config.sections.limits import LimitsSettings, Rate
from gateway.kernel.context import Principal, Reply, RequestContext
from gateway.kernel.errors import GatewayError, RateLimited
from gateway.services.bundle import Services
from gateway.services.limits.ledger import SpendLedger
from gateway.services.limits.limiter import Bucket, Limiter, Outcome
from middleware.limits.headers import rate_headers
from middleware.limits.tokens import estimate_tokens


class LimitsStage:
    name = "limits"

    def __init__(self, settings: LimitsSettings, limiter: Limiter, ledger: SpendLedger) -> None:
        self._settings = settings
        self._limiter = limiter
        self._ledger = ledger

    async def __call__(self, ctx: RequestContext, call_next: Handler) -> Reply:
        self._ledger.check(ctx.principal)
        estimate = estimate_tokens(ctx, self._settings.default_completion_tokens)
        buckets = self.buckets(ctx, estimate)
        entry = ""
        if buckets:
            outcome = await self._limiter.hit(buckets, self._settings.window_s)
            headers = rate_headers(buckets, outcome)
            if not outcome.allowed:
                raise over_limit(buckets[outcome.refused], outcome, headers, self._settings.window_s)
            ctx.response_headers.update(headers)
            entry = outcome.entry
        token_names = [b.name for b in buckets if b.dimension == "tokens"]
        try:
            reply = await call_next(ctx)
        except GatewayError:
            await self._limiter.adjust(token_names, -estimate, entry, self._settings.window_s)
            raise

        async def settle(done: RequestContext) -> None:
            if done.usage is not None and token_names:
                delta = done.usage.total_tokens - estimate
                await self._limiter.adjust(token_names, delta, entry, self._settings.window_s)
            self._ledger.record(done.principal, done.served_model or done.model, done.usage)

        ctx.on_complete(settle)
        return reply

    def buckets(self, ctx: RequestContext, tokens: int) -> list[Bucket]:
        return request_buckets(self._settings, ctx.principal, ctx.model, tokens)


def request_buckets(s: LimitsSettings, principal: Principal | None, model: str | None, tokens: int) -> list[Bucket]:
    """The buckets one request draws from: its key, its tenant and (``model`` given) its canonical model."""
    out: list[Bucket] = []
    if principal is not None:
        _add(out, f"k:{principal.key_id}", key_rate(principal, s.key), tokens)
        _add(out, f"t:{principal.tenant}", s.tenants.get(principal.tenant) or s.tenants.get("*"), tokens)
    if model is not None:
        _add(out, f"m:{model}", s.models.get(model) or s.models.get("*"), tokens)
    return out


def key_rate(principal: Principal, default: Rate) -> Rate:
    rpm, tpm = principal.rpm, principal.tpm
    if rpm is None and tpm is None:
        return default
    return Rate(rpm=rpm if rpm is not None else default.rpm, tpm=tpm if tpm is not None else default.tpm)


def _add(out: list[Bucket], scope: str, rate: Rate | None, tokens: int) -> None:
    if rate is None:
        return
    if rate.rpm is not None:
        out.append(Bucket(f"{scope}:r", "requests", rate.rpm, 1))
    if rate.tpm is not None:
        out.append(Bucket(f"{scope}:t", "tokens", rate.tpm, tokens))


def over_limit(bucket: Bucket, outcome: Outcome, headers: dict[str, str], window_s: int) -> RateLimited:
    scope, _, _ = bucket.name.rpartition(":")
    what = "requests" if bucket.dimension == "requests" else "tokens"
    err = RateLimited(
        f"Rate limit reached for {scope} on {what} per {window_s}s: "
        f"limit {bucket.limit}, used {outcome.counts[outcome.refused]}, requested {bucket.cost}.",
        headers={**headers, "retry-after": str(max(1, math.ceil(outcome.reset_s)))},
    )
    err.error_type = what
    return err


def build(services: Services) -> LimitsStage:
    return LimitsStage(services.settings.limits, Services.need(services.limiter, "a rate limiter", "limits"),
                       Services.need(services.ledger, "a spend ledger", "limits"))
