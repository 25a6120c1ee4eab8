"""Public model names and aliases → deployments on backends, with candidate lists precomputed.

A *tier* is the deployments of one model group. A named model routes over its own tier, then
over the tiers of its ``routing.fallbacks``; ``auto`` routes over every ``auto`` model's tier in an
order chosen per request kind (code, simple, general), cheapest first. All of it is built once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from gateway.kernel.config import BackendSettings, DeploymentSettings, ModelSettings, Settings
from routers.backends import offers_of
from routers.backends.base import Backend
from routers.needs import ALL, CAPABILITY_BITS, MODALITY_BITS, PROTOCOL_BITS, mask_of
from routers.state import DeploymentState, GaugeChild, Tuning

if TYPE_CHECKING:

    from gateway.kernel.config.model import CostSettings

Kind = Literal["general", "code", "simple"]

@dataclass(frozen=True, slots=True, eq=False)
class Deployment:
    """One model on one backend; compared by identity (``eq=False``) so it can sit in a set."""

    backend: Backend
    upstream_model: str
    model: str = ""
    weight: float = 1.0
    offers: int = ALL
    context_window: int = 0
    cost: float = 0.0
    region: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)
    max_concurrency: int = 0
    state: DeploymentState = field(default_factory=lambda: DeploymentState(Tuning()))


@dataclass(frozen=True, slots=True)
class Tier:
    model: str
    deployments: tuple[Deployment, ...]
    offers: int
    fallback: bool = False


@dataclass(frozen=True, slots=True)
class ModelEntry:
    name: str
    owned_by: str
    deployments: tuple[Deployment, ...]
    tiers: tuple[Tier, ...] = ()
    tags: frozenset[str] = frozenset()
    cost: float = 0.0
    auto: bool = True


@dataclass(frozen=True, slots=True)
class AutoPlan:
    """Tier orders for ``model: "auto"``, one per request kind."""

    general: tuple[Tier, ...]
    code: tuple[Tier, ...]
    simple: tuple[Tier, ...]

    def for_kind(self, kind: Kind) -> tuple[Tier, ...]:
        return self.code if kind == "code" else self.simple if kind == "simple" else self.general


GaugeFactory = Callable[[str, str], GaugeChild]


class ModelRegistry:
    def __init__(
        self,
        models: Mapping[str, ModelEntry],
        aliases: Mapping[str, str],
        auto: AutoPlan | None = None,
        auto_name: str = "",
    ) -> None:
        self._models = dict(models)
        self._lookup = {**{name: name for name in models}, **aliases}
        self.auto = auto
        self.auto_name = auto_name
        self.counts_tokens = any(d.context_window for m in models.values() for d in m.deployments)

    @classmethod
    def from_settings(
        cls, settings: Settings, backends: Mapping[str, Backend], gauge: GaugeFactory | None = None
    ) -> ModelRegistry:
        r = settings.routing
        tuning = Tuning(r.circuit.failures, r.circuit.open_s, r.circuit.max_open_s, r.ewma_decay_s)
        by_name = {b.name: b for b in settings.backends}
        models: dict[str, ModelEntry] = {}
        aliases: dict[str, str] = {}
        for m in settings.models:
            deps = tuple(
                _deployment(m, d, by_name[d.backend], backends[d.backend], tuning, gauge)
                for d in m.deployments
            )
            models[m.name] = ModelEntry(
                m.name, m.owned_by, deps, (), frozenset(m.tags), _cost(m.cost), m.auto
            )
            aliases.update({alias: m.name for alias in m.aliases})
        lookup = {**{n: n for n in models}, **aliases}
        models = {n: _with_tiers(e, r.fallbacks, models, lookup) for n, e in models.items()}
        auto = _auto_plan(models) if r.auto_model else None
        return cls(models, aliases, auto, r.auto_model)

    def resolve(self, name: str) -> ModelEntry | None:
        canonical = self._lookup.get(name)
        return self._models[canonical] if canonical is not None else None

    def deployments(self) -> Iterator[Deployment]:
        for entry in self._models.values():
            yield from entry.deployments

    def __iter__(self) -> Iterator[ModelEntry]:
        return iter(self._models.values())


def _cost(cost: CostSettings) -> float:
    return cost.input_per_mtok + cost.output_per_mtok


def _deployment(
    m: ModelSettings,
    d: DeploymentSettings,
    b: BackendSettings,
    backend: Backend,
    tuning: Tuning,
    gauge: GaugeFactory | None,
) -> Deployment:
    modalities = d.modalities if d.modalities is not None else m.modalities
    capabilities = d.capabilities if d.capabilities is not None else m.capabilities
    offers = mask_of(modalities, MODALITY_BITS) | mask_of(capabilities, CAPABILITY_BITS) | PROTOCOL_BITS
    labels = {**b.labels, **d.labels}
    upstream = d.model or m.name
    child = gauge(b.name, upstream) if gauge is not None else None
    return Deployment(
        backend=backend,
        upstream_model=upstream,
        model=m.name,
        weight=d.weight,
        offers=offers & offers_of(b.type),
        context_window=d.context_window or m.context_window or 0,
        cost=_cost(d.cost or m.cost),
        region=labels.get("region", ""),
        labels=labels,
        max_concurrency=d.max_concurrency or 0,
        state=DeploymentState(tuning, child),
    )


def _tier(entry: ModelEntry, fallback: bool = False) -> Tier:
    offers = 0
    for d in entry.deployments:
        offers |= d.offers
    return Tier(entry.name, entry.deployments, offers, fallback)


def _with_tiers(
    entry: ModelEntry,
    fallbacks: Mapping[str, tuple[str, ...]],
    models: Mapping[str, ModelEntry],
    lookup: Mapping[str, str],
) -> ModelEntry:
    tiers = [_tier(entry)]
    for name in fallbacks.get(entry.name, ()):
        if name not in lookup:
            raise ValueError(f"routing.fallbacks.{entry.name}: unknown model {name!r}")
        tiers.append(_tier(models[lookup[name]], fallback=True))
    return ModelEntry(
        entry.name, entry.owned_by, entry.deployments, tuple(tiers), entry.tags, entry.cost, entry.auto
    )


def _auto_plan(models: Mapping[str, ModelEntry]) -> AutoPlan:
    pool = sorted((e for e in models.values() if e.auto), key=lambda e: e.cost)

    def order(first: str | None, last: str | None) -> tuple[Tier, ...]:
        head = [e for e in pool if first is not None and first in e.tags]
        tail = [e for e in pool if last is not None and last in e.tags and e not in head]
        middle = [e for e in pool if e not in head and e not in tail]
        return tuple(_tier(e) for e in (*head, *middle, *tail))

    return AutoPlan(general=order(None, "small"), code=order("code", "small"), simple=order("small", None))
