"""The MCP stores' share of the PostgreSQL pool: opened and migrated on first use; database failures are a 503.

Two tables (component ``mcp``): ``llmops_mcp_credentials``, one encrypted upstream token per (subject,
server); ``llmops_mcp_pins``, per (server, tool) the approved definition and the pending one (a first
sighting awaiting approval, or a change), with what the scanner found in it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from gateway.kernel.errors import ServiceOverloaded
from gateway.services.stores.migrated import Connection, MigratedPool

if TYPE_CHECKING:
    from gateway.services.stores.postgres import Postgres

__all__ = ["Connection", "McpPool", "McpStoreUnavailable"]

COMPONENT = "mcp"
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE llmops_mcp_credentials (
        subject text NOT NULL,
        server text NOT NULL,
        nonce bytea NOT NULL,
        ciphertext bytea NOT NULL,
        key_id text NOT NULL,
        fingerprint text NOT NULL,
        updated_at bigint NOT NULL,
        PRIMARY KEY (subject, server)
    );
    CREATE TABLE llmops_mcp_pins (
        server text NOT NULL,
        tool text NOT NULL,
        approved_hash text,
        approved jsonb,
        approved_at bigint,
        approved_by text,
        pending_hash text,
        pending jsonb,
        pending_at bigint,
        findings jsonb NOT NULL DEFAULT '[]',
        revoked boolean NOT NULL DEFAULT false,
        PRIMARY KEY (server, tool)
    );
    """,
    """
    ALTER TABLE llmops_mcp_credentials ADD COLUMN refresh_nonce bytea, ADD COLUMN refresh_ciphertext bytea,
        ADD COLUMN expires_at bigint;
    CREATE TABLE llmops_mcp_oauth_states (
        state_hash text PRIMARY KEY,
        subject text NOT NULL,
        server text NOT NULL,
        nonce bytea NOT NULL,
        verifier bytea NOT NULL,
        expires_at bigint NOT NULL
    );
    CREATE INDEX llmops_mcp_oauth_states_expiry ON llmops_mcp_oauth_states (expires_at);
    """,
)


class McpStoreUnavailable(ServiceOverloaded):
    default_code = "mcp_store_unavailable"


class McpPool(MigratedPool):
    def __init__(self, open_postgres: Callable[[], Awaitable[Postgres]]) -> None:
        super().__init__(open_postgres, COMPONENT, MIGRATIONS, McpStoreUnavailable, "MCP store")

