"""Why no deployment could take a request, as the right error (only on the failure path)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from gateway.kernel.errors import (
    GatewayError,
    PermissionDenied,
    ServiceOverloaded,
    UnsupportedCapability,
    UpstreamUnavailable,
)
from routers.locality import Locality
from routers.needs import BITS, Needs
from routers.registry import Tier
from routers.select import fits

if TYPE_CHECKING:
    from gateway.kernel.observability.metrics import Metrics


def unroutable(
    model: str, tiers: Sequence[Tier], needs: Needs, loc: Locality | None, metrics: Metrics | None
) -> GatewayError:
    """400 when nothing can serve what the request needs, 403 when policy rules every fit out,
    503 when the fits are all busy, broken or cooling down."""
    err, reason = _diagnose(model, tiers, needs, loc)
    if metrics is not None:
        metrics.unroutable.labels(model, reason).inc()
    return err


def _diagnose(
    model: str, tiers: Sequence[Tier], needs: Needs, loc: Locality | None
) -> tuple[GatewayError, str]:
    fitting = [d for t in tiers for d in t.deployments if fits(d, needs)]
    if not fitting:
        return UnsupportedCapability(_missing(model, tiers, needs), param="model"), "capability"
    allowed = loc.allowed if loc is not None else None
    if allowed is not None and not any(d.region in allowed for d in fitting):
        regions = ", ".join(sorted(allowed)) or "none"
        return PermissionDenied(
            f"No deployment of {model!r} is in a region policy allows ({regions}).", code="region_not_allowed"
        ), "region"
    if all(d.max_concurrency and d.state.outstanding >= d.max_concurrency for d in fitting):
        return ServiceOverloaded(f"Every deployment of {model!r} is at its concurrency limit."), "concurrency"
    return UpstreamUnavailable(f"No deployment of {model!r} is available right now."), "unavailable"


def _missing(model: str, tiers: Sequence[Tier], needs: Needs) -> str:
    offered = 0
    for t in tiers:
        offered |= t.offers
    missing = [name for name, bit in BITS.items() if needs.mask & bit and not offered & bit]
    if missing:
        return f"The model {model!r} does not support: {', '.join(missing)}."
    if not any(not needs.mask & ~d.offers for t in tiers for d in t.deployments):
        return f"No deployment of {model!r} supports everything this request needs at once."
    return f"The request (about {needs.tokens} tokens) exceeds every context window of {model!r}."
