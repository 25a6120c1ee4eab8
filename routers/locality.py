"""Locality: where a request may go (hard) and where it would rather go (soft).

Hard: the policy obligation ``allowed_regions`` (data residency, ``ctx.hints.allowed_regions``). A
deployment without a ``region`` label never serves a request that carries it.

Soft, strongest first (each adds to a deployment's preference; only the best-scored are balanced):

=====================================  ======  ==========================================
hint                                   score   source
=====================================  ======  ==========================================
requested region                       8       header ``x-llmops-region``, else the
                                               tenant default ``principal.metadata.region``
local deployment (sidecar)             4       ``routing.local_labels`` all match
data locality                          2       ``ctx.hints.data_regions`` (the rag stage)
=====================================  ======  ==========================================
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from gateway.kernel.context import RequestContext


@dataclass(slots=True)
class Locality:
    allowed: frozenset[str] | None = None
    region: str = ""
    region_source: str = ""
    data: tuple[str, ...] = ()
    prefers_local: bool = False

    @property
    def soft(self) -> bool:
        return bool(self.region or self.data or self.prefers_local)

    def preference(self, region: str, local: bool) -> int:
        score = 8 if self.region and region == self.region else 0
        if local and self.prefers_local:
            score += 4
        if self.data and region in self.data:
            score += 2
        return score

    def reason(self) -> str:
        parts = []
        if self.region:
            parts.append(f"region={self.region}({self.region_source})")
        if self.data:
            parts.append("data=" + ",".join(self.data))
        if self.prefers_local:
            parts.append("local")
        if self.allowed is not None:
            parts.append("allowed=" + ",".join(sorted(self.allowed)))
        return ";".join(parts)


def is_local(labels: Mapping[str, str], local_labels: Mapping[str, str]) -> bool:
    return bool(local_labels) and all(labels.get(k) == v for k, v in local_labels.items())


def locality_of(ctx: RequestContext, header: str, tenant_key: str, sidecar: bool) -> Locality | None:
    """The request's constraints and hints; ``None`` when there are none (the fast path)."""
    hints = ctx.hints
    if not hints.region:
        region = ctx.headers.get(header, "")
        source = "header" if region else ""
        if not region and ctx.principal is not None:
            value = ctx.principal.metadata.get(tenant_key)
            region, source = (value, "tenant") if isinstance(value, str) else ("", "")
        hints.region, hints.region_source = region, source
    allowed, data = hints.allowed_regions, hints.data_regions
    if allowed is None and not data and not hints.region and not sidecar:
        return None
    return Locality(allowed, hints.region, hints.region_source, data, sidecar)
