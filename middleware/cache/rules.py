"""Effective cache rule for a request: global < route < tenant < key (later levels override)."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.kernel.config.sections.cache import CacheRule, CacheSettings
from gateway.kernel.context import RequestContext, tenant_of


@dataclass(frozen=True, slots=True)
class Rule:
    ttl_s: int
    semantic: bool
    nondeterministic: bool


def resolve(settings: CacheSettings, ctx: RequestContext) -> Rule | None:
    """``None`` when the cache does not serve this request at all."""
    if ctx.route == "responses" and ctx.stream:
        return None  # a Responses stream is its own event sequence: not replayed from a cached body
    route = settings.routes.get(ctx.route) if ctx.route in ("chat", "embeddings", "responses") else None
    if route is None:
        return None
    layers: list[CacheRule] = [route]
    if (tenant := settings.tenants.get(tenant_of(ctx.principal))) is not None:
        layers.append(tenant)
    if ctx.principal is not None and (key := settings.keys.get(ctx.principal.key_id)) is not None:
        layers.append(key)
    enabled, ttl, semantic, nondet = True, settings.ttl_s, settings.semantic, settings.nondeterministic
    for layer in layers:
        enabled = layer.enabled if layer.enabled is not None else enabled
        ttl = layer.ttl_s if layer.ttl_s is not None else ttl
        semantic = layer.semantic if layer.semantic is not None else semantic
        nondet = layer.nondeterministic if layer.nondeterministic is not None else nondet
    return Rule(ttl, semantic and ctx.route == "chat", nondet) if enabled else None
