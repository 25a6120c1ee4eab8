"""The data-plane node agent: HTTP server, signed jobs, heartbeats, and the client for it."""

from __future__ import annotations

from executors.node.agent import NodeAgent
from executors.node.app import create_app
from executors.node.client import NodeClient
from executors.node.heartbeat import Heartbeater

__all__ = ["Heartbeater", "NodeAgent", "NodeClient", "create_app"]
