"""The data-plane node agent: HTTP server, signed jobs, heartbeats, and the client for it."""

from __future__ import annotations

from executors.node.agent import NodeAgent
from executors.node.app import create_app
from executors.node.client import NodeClient, NodePin
from executors.node.heartbeat import Heartbeater

__all__ = ["Heartbeater", "NodeAgent", "NodeClient", "NodePin", "create_app"]
