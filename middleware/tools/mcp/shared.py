"""The one ``McpRegistry`` of a gateway process, made by the root (``gateway/wiring.py``) with the services,
and found by everything that offers upstream tools: the tools stage, ``/mcp`` and the admin API."""

from __future__ import annotations

from gateway.services.bundle import Services
from middleware.tools.mcp.registry import McpRegistry
from middleware.tools.mcp.store import ServerStore

_REGISTRIES: dict[int, tuple[Services, McpRegistry]] = {}


def install(services: Services, store: ServerStore | None) -> McpRegistry:
    """Make this process's registry for ``services`` (closed by the caller with ``aclose``)."""
    s = services.settings
    shared = s.postgres.dsn is not None or s.auth.store == "postgres"
    registry = McpRegistry(s, services.mcp_credentials, services.mcp_guard, services.log, store=store,
                           scheduler=services.scheduler, shared_store=shared)
    registry.report_unavailable()
    _REGISTRIES[id(services)] = (services, registry)
    return registry


def registry_of(services: Services) -> McpRegistry | None:
    held = _REGISTRIES.get(id(services))
    return held[1] if held is not None and held[0] is services else None


def forget(services: Services) -> None:
    _REGISTRIES.pop(id(services), None)
