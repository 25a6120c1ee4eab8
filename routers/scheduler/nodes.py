"""``NodeInfo``: what the control plane knows about one node, from a heartbeat or from config."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from gateway.kernel.config.sections.tools import StaticNode


@dataclass(frozen=True, slots=True)
class NodeInfo:
    id: str
    url: str
    labels: Mapping[str, str] = field(default_factory=dict)
    drivers: tuple[str, ...] = ()
    runtimes: tuple[str, ...] = ()
    datasets: tuple[str, ...] = ()
    slots: int = 1
    free_slots: int = 1
    last_seen: float = 0.0
    static: bool = False
    interval_s: float = 0.0  # how often the node heartbeats; 0 = unknown (only the TTL applies)
    boot: str = ""  # the node process's random boot id: jobs are signed for NODE_ID@BOOT

    @property
    def region(self) -> str:
        return self.labels.get("region", "")

    def fresh(self, now: float, ttl_s: float) -> bool:
        """Heard from recently enough: within the TTL, and no heartbeat overdue by half an interval."""
        window = min(ttl_s, 1.5 * self.interval_s) if self.interval_s > 0 else ttl_s
        return now - self.last_seen <= window

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id, "url": self.url, "labels": dict(self.labels), "drivers": list(self.drivers),
            "runtimes": list(self.runtimes), "datasets": list(self.datasets), "slots": self.slots,
            "free_slots": self.free_slots, "last_seen": self.last_seen, "static": self.static,
            "interval_s": self.interval_s, "boot": self.boot,
        }


def node_from_static(node: StaticNode) -> NodeInfo:
    return NodeInfo(node.id, node.url, dict(node.labels), node.drivers, node.runtimes, node.datasets,
                    node.slots, node.slots, 0.0, static=True)


def node_from_json(data: Mapping[str, Any]) -> NodeInfo:
    """Inverse of ``NodeInfo.to_json`` (the shared registry's storage format)."""
    return NodeInfo(
        str(data["id"]), str(data["url"]), dict(data.get("labels", {})), tuple(data.get("drivers", ())),
        tuple(data.get("runtimes", ())), tuple(data.get("datasets", ())), int(data.get("slots", 1)),
        int(data.get("free_slots", 0)), float(data.get("last_seen", 0.0)), bool(data.get("static", False)),
        float(data.get("interval_s", 0.0)), str(data.get("boot", "")),
    )


def node_from_heartbeat(payload: Any, now: float) -> NodeInfo:
    """Parse a node's heartbeat (``executors.node``: ``NodeAgent.status()`` + ``url``). ``ValueError`` if bad."""
    if not isinstance(payload, Mapping):
        raise ValueError("heartbeat must be a JSON object")
    node_id, url = payload.get("node_id"), payload.get("url")
    if not isinstance(node_id, str) or not node_id or not isinstance(url, str) or not url.startswith("http"):
        raise ValueError("heartbeat needs node_id and an http(s) url")
    labels = _strings_map(payload.get("labels", {}))
    runtimes = labels.pop("runtimes", "")
    drivers = _drivers(payload.get("drivers", {}))
    slots, free = payload.get("slots", 1), payload.get("free_slots", 0)
    if not isinstance(slots, int) or not isinstance(free, int) or slots < 1:
        raise ValueError("heartbeat slots must be integers")
    datasets = payload.get("datasets", [])
    if not isinstance(datasets, list) or not all(isinstance(d, str) for d in datasets):
        raise ValueError("heartbeat datasets must be a list of strings")
    interval, boot = payload.get("interval_s", 0.0), payload.get("boot", "")
    if not isinstance(interval, int | float) or isinstance(interval, bool) or interval < 0:
        raise ValueError("heartbeat interval_s must be a number >= 0")
    if not isinstance(boot, str) or len(boot) > 64:
        raise ValueError("heartbeat boot must be a short string")
    runtime_set = {r for r in runtimes.split(",") if r} | {r for rs in drivers.values() for r in rs}
    return NodeInfo(node_id, url, labels, tuple(sorted(drivers)), tuple(sorted(runtime_set)),
                    tuple(datasets), slots, max(0, min(free, slots)), now, interval_s=float(interval), boot=boot)


def _strings_map(raw: Any) -> dict[str, str]:
    if not isinstance(raw, Mapping) or not all(isinstance(v, str) for v in raw.values()):
        raise ValueError("heartbeat labels must map strings to strings")
    return {str(k): v for k, v in raw.items()}


def _drivers(raw: Any) -> dict[str, tuple[str, ...]]:
    """Available drivers → the runtimes each runs."""
    if not isinstance(raw, Mapping):
        raise ValueError("heartbeat drivers must be an object")
    found: dict[str, tuple[str, ...]] = {}
    for name, info in raw.items():
        if isinstance(info, Mapping) and info.get("available") is True:
            runtimes = info.get("runtimes", [])
            found[str(name)] = tuple(str(r) for r in runtimes) if isinstance(runtimes, list) else ()
    return found
