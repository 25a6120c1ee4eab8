"""Where live nodes are kept: in process (embedded default) or in Redis (shared by replicas).

Static nodes from config are always listed; heartbeat nodes expire ``ttl_s`` after their last beat.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from routers.scheduler.nodes import NodeInfo


class NodeRegistry(Protocol):
    async def upsert(self, node: NodeInfo) -> None: ...

    async def live(self, now: float) -> list[NodeInfo]:
        """Static nodes plus every node heard from within the TTL (wall-clock ``now``)."""
        ...

    async def claim_nonce(self, nonce: str, ttl_s: float) -> bool:
        """Record a heartbeat nonce; False if any replica has seen it (a replay)."""
        ...


def merged(static: Sequence[NodeInfo], dynamic: Sequence[NodeInfo]) -> list[NodeInfo]:
    """Static nodes, overridden by a heartbeat from the same id (it knows its real state)."""
    by_id = {n.id: n for n in static}
    by_id.update({n.id: n for n in dynamic})
    return sorted(by_id.values(), key=lambda n: n.id)


class MemoryNodeRegistry:
    def __init__(self, ttl_s: float, static: Sequence[NodeInfo] = ()) -> None:
        self._ttl = ttl_s
        self._static = tuple(static)
        self._nodes: dict[str, NodeInfo] = {}
        self._nonces: dict[str, float] = {}

    async def upsert(self, node: NodeInfo) -> None:
        self._nodes[node.id] = node

    async def live(self, now: float) -> list[NodeInfo]:
        for stale in [i for i, n in self._nodes.items() if not n.fresh(now, self._ttl)]:
            del self._nodes[stale]
        return merged(self._static, list(self._nodes.values()))

    async def claim_nonce(self, nonce: str, ttl_s: float) -> bool:
        # Nonces are also checked by executors.signing.NonceCache; this only matters across replicas.
        return True
