"""What a job needs from a node (``Placement``), which nodes qualify, and in what order."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from routers.scheduler.nodes import NodeInfo


@dataclass(frozen=True, slots=True)
class Placement:
    runtime: str
    tenant: str = ""
    driver: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    regions: tuple[str, ...] | None = None  # the policy's allowed_regions; None = unconstrained
    dataset: str | None = None
    prefer_region: str | None = None
    pin: str | None = None  # a node id: co-scheduled with a workspace already there
    batch: bool = False
    exclude: frozenset[str] = frozenset()

    def describe(self) -> str:
        parts = [f"runtime={self.runtime}"]
        if self.driver:
            parts.append(f"driver={self.driver}")
        parts += [f"{k}={v}" for k, v in sorted(self.labels.items())]
        if self.regions is not None:
            parts.append("regions=" + ",".join(self.regions))
        if self.pin:
            parts.append(f"node={self.pin}")
        return " ".join(parts)


def eligible(node: NodeInfo, p: Placement) -> bool:
    """Hard constraints: runtime, driver, labels, allowed regions, pin, excluded nodes."""
    if p.runtime not in node.runtimes or node.id in p.exclude:
        return False
    if p.driver is not None and p.driver not in node.drivers:
        return False
    if any(node.labels.get(k) != v for k, v in p.labels.items()):
        return False
    if p.regions is not None and node.region not in p.regions:
        return False
    return p.pin is None or node.id == p.pin


def load(node: NodeInfo, inflight: int) -> float:
    """Busy fraction: the larger of what the node reported and what this replica has sent it."""
    return max(inflight, node.slots - node.free_slots) / node.slots


def rank(nodes: Iterable[NodeInfo], p: Placement, inflight: Mapping[str, int]) -> list[NodeInfo]:
    """Eligible nodes, best first: holds the dataset, in the preferred region, least loaded."""

    def key(node: NodeInfo) -> tuple[int, int, float, str]:
        has_data = 0 if p.dataset and p.dataset in node.datasets else 1
        near = 0 if p.prefer_region and node.region == p.prefer_region else 1
        return has_data, near, load(node, inflight.get(node.id, 0)), node.id

    return sorted((n for n in nodes if eligible(n, p)), key=key)
