"""Placement of tool jobs on data-plane nodes, and the node registry fed by signed heartbeats.

Order of decisions for one job: hard constraints (runtime, driver, labels, the policy's
``allowed_regions``, a pinned node) → data locality (a node holding the dataset, then the preferred
region) → load (least loaded). Jobs that find no free slot wait in a per-tenant fair queue
(interactive before batch), bounded: a full queue is a 429.
"""

from routers.scheduler.errors import JobRefused, JobTimeout, NodeFailed, NoEligibleNode, QueueFull, QueueTimeout
from routers.scheduler.nodes import NodeInfo, node_from_heartbeat, node_from_static
from routers.scheduler.placement import Placement
from routers.scheduler.registry import MemoryNodeRegistry, NodeRegistry
from routers.scheduler.scheduler import Dispatch, NodeRunner, Scheduler

__all__ = [
    "Dispatch",
    "JobRefused",
    "JobTimeout",
    "MemoryNodeRegistry",
    "NoEligibleNode",
    "NodeFailed",
    "NodeInfo",
    "NodeRegistry",
    "NodeRunner",
    "Placement",
    "QueueFull",
    "QueueTimeout",
    "Scheduler",
    "node_from_heartbeat",
    "node_from_static",
]
