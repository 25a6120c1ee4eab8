"""The MCP stores one gateway runs, from ``mcp`` settings: built at startup, opened on first use."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING

from gateway.kernel.config.sections.mcp import McpSettings, credentials_key_bytes
from gateway.kernel.observability.logging import JsonLog
from gateway.services.mcp.credentials import PostgresCredentials, Sealer
from gateway.services.mcp.oauth import OAuthFlows, OAuthServer
from gateway.services.mcp.pins import OnChange, PinnedDefinitions
from gateway.services.mcp.pool import McpPool
from gateway.services.mcp.ports import CredentialStore, NoCredentials

if TYPE_CHECKING:
    from gateway.services.stores.postgres import Postgres


def mcp_stores(settings: McpSettings, open_postgres: Callable[[], Awaitable[Postgres]], log: JsonLog,
               resources: AsyncExitStack) -> tuple[CredentialStore, PinnedDefinitions]:
    """Per-subject tokens (only with ``mcp.credentials_key``; OAuth sign-ins for servers with an ``oauth``
    block) and pinned definitions, on one pool."""
    pool = McpPool(open_postgres)
    key = settings.credentials_key
    credentials: CredentialStore = NoCredentials()
    if key is not None:
        credentials = store = PostgresCredentials(pool, Sealer(credentials_key_bytes(key)), log)
        oauth = {s.name: OAuthServer(s.oauth, s.url) for s in settings.servers if s.oauth is not None}
        if oauth:
            resources.push_async_callback(OAuthFlows(pool, store, oauth).aclose)
    on_change: dict[str, OnChange] = {s.name: s.on_change for s in settings.servers}
    guard = PinnedDefinitions(pool, approval=settings.approval, scan=settings.scan,
                              on_change=lambda server: on_change.get(server, "block"), ttl_s=settings.pins_ttl_s,
                              log=log)
    return credentials, guard
