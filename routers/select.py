"""The routing decision: walk the tiers, keep the deployments that fit, prefer by locality, balance.

Pure and synchronous (no I/O): ``Selector.pick`` is what ``bench/routing_bench.py`` measures.
"""

from __future__ import annotations

import random
from collections.abc import Collection, Sequence
from typing import Literal

from routers.locality import Locality
from routers.needs import Needs
from routers.registry import Deployment, Tier

Balancer = Literal["p2c_ewma", "least_outstanding", "weighted"]
_TIE = 0.05  # scores within 5 % are a tie; the cheaper deployment wins it
# ... and so are scores within 2 ms: below that, latency differences are jitter (a GC pause, a
# scheduler hiccup), and chasing them starves a deployment for a whole EWMA decay time.
_TIE_FLOOR_S = 0.002


def fits(d: Deployment, needs: Needs) -> bool:
    return not (needs.mask & ~d.offers) and (not d.context_window or needs.tokens <= d.context_window)


class Selector:
    def __init__(
        self, balancer: Balancer, local: Collection[Deployment] = (), rng: random.Random | None = None
    ):
        self._balancer = balancer
        self._local = frozenset(local)
        self._rng = rng or random.Random()

    def pick(
        self,
        tiers: Sequence[Tier],
        needs: Needs,
        loc: Locality | None,
        tried: Collection[Deployment],
        now: float,
        panic: bool = False,
    ) -> tuple[Deployment, Tier] | None:
        """The deployment to try next and its tier, or ``None`` when nothing is left.

        ``panic``: ignore circuit breakers, cool-downs and health (Envoy's panic routing, used when
        every fitting deployment is ejected: better to try one than to fail for sure).
        """
        mask = needs.mask
        allowed = loc.allowed if loc is not None else None
        for tier in tiers:
            if mask & ~tier.offers:
                continue
            candidates = [
                d
                for d in tier.deployments
                if fits(d, needs)
                and (allowed is None or d.region in allowed)
                and (not d.max_concurrency or d.state.outstanding < d.max_concurrency)
                and (panic or d.state.available(now))
                and d not in tried
            ]
            if candidates:
                if loc is not None and loc.soft and len(candidates) > 1:
                    candidates = self._preferred(candidates, loc)
                return self._balance(candidates, now), tier
        return None

    def _preferred(self, candidates: list[Deployment], loc: Locality) -> list[Deployment]:
        local = self._local
        scores = [loc.preference(d.region, d in local) for d in candidates]
        best = max(scores)
        return [d for d, s in zip(candidates, scores, strict=True) if s == best]

    def _balance(self, c: list[Deployment], now: float) -> Deployment:
        n = len(c)
        if n == 1:
            return c[0]
        if self._balancer == "p2c_ewma":
            i = int(self._rng.random() * n)
            j = int(self._rng.random() * (n - 1))
            return _better(c[i], c[j + 1 if j >= i else j], now)
        if self._balancer == "least_outstanding":
            start = int(self._rng.random() * n)  # ties go to a random one, not always the first
            best = c[start]
            for k in range(1, n):
                d = c[(start + k) % n]
                if _load(d) < _load(best) or (_load(d) == _load(best) and d.cost < best.cost):
                    best = d
            return best
        return self._rng.choices(c, weights=[d.weight for d in c])[0]


def _load(d: Deployment) -> float:
    return (d.state.outstanding + 1) / d.weight


def _better(a: Deployment, b: Deployment, now: float) -> Deployment:
    sa = a.state.score(now) / a.weight
    sb = b.state.score(now) / b.weight
    if abs(sa - sb) <= max(_TIE * max(sa, sb), _TIE_FLOOR_S):  # noise: the cheaper one, else the first (random)
        return b if b.cost < a.cost else a
    return a if sa < sb else b
