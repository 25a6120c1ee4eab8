"""Per-tenant fair queue of jobs waiting for a node slot, bounded, interactive before batch.

Tenants are served round-robin: the order of tenants rotates each time one of them is served, and
``in_order()`` interleaves the tenants' FIFOs, so a tenant with a thousand waiting jobs delays
another tenant's job by at most one turn. Batch jobs are offered a slot only after every
interactive waiter (which may not fit the free nodes: the pump skips, it never blocks).
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict, deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import chain, zip_longest

from routers.scheduler.errors import QueueFull
from routers.scheduler.nodes import NodeInfo
from routers.scheduler.placement import Placement


@dataclass(eq=False, slots=True)
class Waiter:
    placement: Placement
    future: asyncio.Future[NodeInfo] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


class FairQueue:
    def __init__(self, per_tenant: int, total: int) -> None:
        self._per_tenant = per_tenant
        self._total = total
        self._classes: tuple[OrderedDict[str, deque[Waiter]], ...] = (OrderedDict(), OrderedDict())
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def push(self, waiter: Waiter) -> None:
        """Enqueue, or raise ``QueueFull`` (429) when the tenant's or the global bound is reached."""
        p = waiter.placement
        tenants = self._classes[p.batch]
        line = tenants.get(p.tenant)
        if self._size >= self._total or (line is not None and len(line) >= self._per_tenant) or not self._per_tenant:
            kind = "batch" if p.batch else "interactive"
            raise QueueFull(f"Too many {kind} tool jobs are waiting for a node; retry later.",
                            headers={"retry-after": "1"})
        tenants.setdefault(p.tenant, deque()).append(waiter)
        self._size += 1

    def remove(self, waiter: Waiter) -> None:
        p = waiter.placement
        tenants = self._classes[p.batch]
        line = tenants.get(p.tenant)
        if line is None or waiter not in line:
            return
        line.remove(waiter)
        self._size -= 1
        if not line:
            del tenants[p.tenant]

    def served(self, waiter: Waiter) -> None:
        """Dequeue a waiter that got a slot and move its tenant to the back of the rotation."""
        self.remove(waiter)
        tenants = self._classes[waiter.placement.batch]
        if waiter.placement.tenant in tenants:
            tenants.move_to_end(waiter.placement.tenant)

    def in_order(self) -> Iterator[Waiter]:
        """Waiters in service order (a snapshot: safe to serve while iterating)."""
        return chain(*(self._interleave(tenants) for tenants in self._classes))

    @staticmethod
    def _interleave(tenants: OrderedDict[str, deque[Waiter]]) -> list[Waiter]:
        rounds = zip_longest(*(list(line) for line in tenants.values()))
        return [w for turn in rounds for w in turn if w is not None]
