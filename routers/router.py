"""The terminal filter: choose a deployment for the request, send it there, fail over on errors.

Per request: resolve the model to its tiers (or the ``auto`` plan), detect needs, read locality,
then up to ``max_attempts`` times: pick (``Selector``), authorize the tier's canonical model, send,
and on an ``UpstreamError`` mark the deployment (circuit, cool-down) and retry elsewhere if the
retry budget allows. A stream is retried only before its first chunk: backends return a streaming
``Reply`` only once that chunk has arrived.

Authorization per attempt: the request's own model was decided by the chain (authn grants, authz
policy); any other model an attempt would call (a fallback, an ``auto`` candidate) is put to the key's
grants and to the policy gate first, once per request. A denied model is skipped, not tried, and named
in ``x-llmops-route-reason`` (``denied=MODEL``). The ``llmops`` extension is removed from the body here,
last, so the model never receives it.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import TYPE_CHECKING

from gateway.kernel.config.sections.routing import RoutingSettings
from gateway.kernel.context import Reply, ReplyStream, RequestContext
from gateway.kernel.errors import GatewayError, ModelNotFound, PermissionDenied, UpstreamError
from gateway.kernel.extension import FIELD as EXTENSION_FIELD
from gateway.kernel.grants import may_use_model
from gateway.services.policy.gate import PolicyGate
from routers.locality import Locality, is_local, locality_of
from routers.needs import TEXT, Needs, looks_like_code, needs_of
from routers.registry import Deployment, Kind, ModelRegistry, Tier
from routers.retry import RetryBudget, backoff_s
from routers.select import Selector
from routers.truncation import truncate_input
from routers.unroutable import unroutable

if TYPE_CHECKING:
    from gateway.kernel.observability.metrics import Metrics

Sleep = Callable[[float], Awaitable[None]]
_RATE_LIMIT_COOLDOWN_S = 1.0


class Router:
    name = "router"

    def __init__(
        self,
        registry: ModelRegistry,
        settings: RoutingSettings | None = None,
        metrics: Metrics | None = None,
        *,
        rng: random.Random | None = None,
        sleep: Sleep = asyncio.sleep,
        gate: PolicyGate | None = None,
    ) -> None:
        self._registry = registry
        self._gate = gate if gate is not None and gate.configured else None
        self._s = settings or RoutingSettings()
        self._metrics = metrics
        self._rng = rng or random.Random()
        self._sleep = sleep
        local = [d for d in registry.deployments() if is_local(d.labels, self._s.local_labels)]
        self._sidecar = bool(local)
        self.selector = Selector(self._s.balancer, local, self._rng)
        self._budget = RetryBudget(self._s.retry_budget)

    def decide(self, ctx: RequestContext) -> tuple[Needs, tuple[Tier, ...], str, Locality | None]:
        """Everything the choice depends on: needs, the tiers to walk (and why), locality."""
        needs = needs_of(ctx, self._registry.counts_tokens)
        tiers, why = self._plan(ctx, needs)
        if ctx.route == "responses" and ctx.body.get("truncation") == "auto":
            needs = _fitted(ctx, needs, tiers)
        loc = locality_of(ctx, self._s.region_header, self._s.tenant_region_key, self._sidecar)
        return needs, tiers, why, loc

    async def __call__(self, ctx: RequestContext) -> Reply:
        ctx.body.pop(EXTENSION_FIELD, None)
        needs, tiers, why, loc = self.decide(ctx)
        self._budget.deposit()
        tried: list[Deployment] = []
        allowed = {ctx.model} if not ctx.auto else set()
        denied: list[str] = []
        error: UpstreamError | None = None
        while len(tried) < self._s.max_attempts:
            now = time.monotonic()
            chosen = self.selector.pick(tiers, needs, loc, tried, now) or self.selector.pick(
                tiers, needs, loc, tried, now, panic=True
            )
            if chosen is None:
                break
            deployment, tier = chosen
            if tier.model not in allowed:
                if not await self._authorized(ctx, tier.model):
                    denied.append(tier.model)
                    tiers = tuple(t for t in tiers if t.model != tier.model)
                    continue
                allowed.add(tier.model)
            if tried and not await self._may_retry(ctx, len(tried), error, now):
                break
            tried.append(deployment)
            try:
                reply = await self._send(ctx, deployment, now)
            except UpstreamError as exc:
                error = exc
                continue
            ctx.served_model = tier.model
            self._explain(ctx, deployment, tier, why, loc, len(tried), denied)
            return reply
        if error is not None:
            if denied:
                error.headers = {**error.headers, "x-llmops-route-reason": "denied=" + ",".join(denied)}
            raise error
        if denied and not tiers:
            raise PermissionDenied(
                f"No model the policy allows this caller can serve {ctx.requested_model or ctx.model!r} "
                f"(denied: {', '.join(denied)}).", code="model_not_granted",
                headers={"x-llmops-route-reason": "denied=" + ",".join(denied)})
        raise unroutable(ctx.model, tiers, needs, loc, self._metrics)

    async def _authorized(self, ctx: RequestContext, model: str) -> bool:
        """A model other than the one the chain decided: the key's grants, then the policy."""
        if not may_use_model(ctx.principal, model):
            return False
        if self._gate is None:
            return True
        decision = await self._gate.request(ctx, model)
        return decision.allow

    def _plan(self, ctx: RequestContext, needs: Needs) -> tuple[tuple[Tier, ...], str]:
        entry = self._registry.resolve(ctx.model)
        if entry is not None:
            return entry.tiers, "model"
        auto = self._registry.auto
        if auto is None or ctx.model != self._registry.auto_name:
            raise ModelNotFound(
                f"The model {ctx.model!r} does not exist or you do not have access to it.", param="model"
            )
        kind = self._kind(needs)
        tiers = tuple(t for t in auto.for_kind(kind) if may_use_model(ctx.principal, t.model))
        if not tiers:
            raise PermissionDenied(f"No model this key may use can serve {self._registry.auto_name!r}.",
                                   code="model_not_granted")
        return tiers, "auto:" + kind

    def _kind(self, needs: Needs) -> Kind:
        c = self._s.classifier
        if c.code and needs.text and looks_like_code(needs.text):
            return "code"
        if c.simple_max_tokens and needs.tokens <= c.simple_max_tokens and needs.mask == TEXT and needs.text:
            return "simple"
        return "general"

    async def _may_retry(
        self, ctx: RequestContext, retry: int, error: UpstreamError | None, now: float
    ) -> bool:
        if not self._budget.withdraw(now):
            if self._metrics is not None:
                self._metrics.retry_budget_exhausted.labels(ctx.model).inc()
            return False
        if self._metrics is not None:
            self._metrics.route_retries.labels(ctx.model, error.code if error else "").inc()
        await self._sleep(backoff_s(self._s.backoff, retry, self._rng))
        return True

    async def _send(self, ctx: RequestContext, d: Deployment, now: float) -> Reply:
        state = d.state
        state.begin(now)
        ctx.backend = d.backend.name
        ctx.upstream_model = d.upstream_model
        try:
            reply = await d.backend.send(ctx, d.upstream_model)
        except UpstreamError as exc:
            state.fail(time.monotonic(), self._cooldown(d, exc))
            state.end()
            raise
        except BaseException:
            state.end()
            raise
        done = time.monotonic()
        state.succeed(done - now, done)
        if reply.stream is None:
            state.end()
        else:
            reply.stream = _tracked(reply.stream, d)
        return reply

    def _cooldown(self, d: Deployment, exc: GatewayError) -> float:
        raw = exc.headers.get("retry-after")
        seconds = _RATE_LIMIT_COOLDOWN_S if exc.status == 429 else 0.0
        if raw:
            try:
                seconds = float(raw)
            except ValueError:
                pass
        seconds = min(seconds, self._s.retry_after_max_s)
        if seconds > 0 and self._metrics is not None:
            self._metrics.upstream_cooldowns.labels(d.backend.name).inc()
        return seconds

    def _explain(self, ctx: RequestContext, d: Deployment, tier: Tier, why: str, loc: Locality | None,
                 attempts: int, denied: list[str]) -> None:
        reason = f"{why}={tier.model}"
        if tier.fallback:
            reason += ";fallback"
            if self._metrics is not None:
                self._metrics.route_fallbacks.labels(ctx.model, tier.model).inc()
        if loc is not None:
            reason += ";" + loc.reason()
        if attempts > 1:
            reason += f";attempt={attempts}"
        if denied:
            reason += ";denied=" + ",".join(denied)
        headers = ctx.response_headers
        headers["x-llmops-backend"] = d.backend.name
        headers["x-llmops-route-reason"] = reason + ";balance=" + self._s.balancer


async def _tracked(stream: ReplyStream, d: Deployment) -> AsyncGenerator[bytes, None]:
    """Relay ``stream`` and count the request as outstanding until it ends."""
    try:
        async for chunk in stream:
            yield chunk
    finally:
        d.state.end()
        await stream.aclose()


def _fitted(ctx: RequestContext, needs: Needs, tiers: tuple[Tier, ...]) -> Needs:
    """``truncation: "auto"``: the input cut to the largest context window among the tiers, if it is over."""
    windows = [d.context_window for t in tiers for d in t.deployments]
    if not windows or 0 in windows:  # some deployment declares no window: nothing to fit
        return needs
    over = needs.tokens - max(windows)
    if over > 0 and truncate_input(ctx.body, over):
        return needs_of(ctx, True)
    return needs

