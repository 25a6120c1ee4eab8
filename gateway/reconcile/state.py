"""Each declared resource's state in the running configuration: ready, or failed with the reason."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from gateway.kernel.config.sections.reconcile import ExpectedNodes

if TYPE_CHECKING:
    from gateway.wiring import Gateway


def ready(kind: str, name: str) -> dict[str, Any]:
    return {"kind": kind, "name": name, "state": "ready"}


def failed(kind: str, name: str, reason: str) -> dict[str, Any]:
    return {"kind": kind, "name": name, "state": "failed", "reason": reason}


async def resource_states(gateway: Gateway, rejected: Sequence[str]) -> list[dict[str, Any]]:
    """Backends and models from the last health checks, the policy (failed when the last change to it was
    rejected: the previous policy still runs), keys, tools, MCP servers and expected node labels."""
    s = gateway.settings
    out = _backends(gateway) + _models(gateway)
    out += [ready("key", k.key_id) for k in s.auth.static_keys]
    out += _policy(gateway, [e for e in rejected if e.startswith("policy")])
    out += [ready("tool", name) for name in (*s.tools.builtin, *(t.name for t in s.tools.custom))]
    out += [ready("mcp_server", server.name) for server in s.mcp.servers]
    out += await _nodes(gateway, s.reconcile.expected_nodes)
    return out


def _backends(gateway: Gateway) -> list[dict[str, Any]]:
    healthy: dict[str, bool] = {}
    for d in gateway.registry.deployments():
        healthy[d.backend.name] = healthy.get(d.backend.name, True) and d.state.healthy
    return [ready("backend", name) if healthy.get(name, True)
            else failed("backend", name, "health check failed: the backend did not answer")
            for name in gateway.backends]


def _models(gateway: Gateway) -> list[dict[str, Any]]:
    return [ready("model", entry.name) if any(d.state.healthy for d in entry.deployments)
            else failed("model", entry.name, "no deployment passes its health check")
            for entry in gateway.registry]


def _policy(gateway: Gateway, errors: list[str]) -> list[dict[str, Any]]:
    policy = gateway.settings.policy
    names = ["settings", *(f"modules/{m}" for m in policy.modules)]
    if errors:
        reason = "; ".join(errors) + " (the previous policy still runs)"
        return [failed("policy", name, reason) for name in names]
    return [ready("policy", name) for name in names]


async def _nodes(gateway: Gateway, expected: Sequence[ExpectedNodes]) -> list[dict[str, Any]]:
    if not expected:
        return []
    scheduler = gateway.services.scheduler if gateway.services is not None else None
    if scheduler is None:
        return [failed("node_labels", e.name, "no node plane is configured (tools.nodes or tools.enrollment)")
                for e in expected]
    live = await scheduler.registry.live(time.time())
    out = []
    for e in expected:
        found = sum(1 for n in live if all(n.labels.get(k) == v for k, v in e.labels.items()))
        out.append(ready("node_labels", e.name) if found >= e.count else
                   failed("node_labels", e.name, f"{found} of {e.count} live nodes carry labels {e.labels}"))
    return out
