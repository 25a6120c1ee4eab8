"""What the MCP client side needs from storage, as protocols, with the defaults used before any store exists.

``CredentialStore``: upstream tokens keyed by (subject, server), encrypted at rest; a token is only ever
read for the subject it was stored for. ``DefinitionGuard``: decides which discovered tools may be offered
(pinned definitions, description scanning); ``held`` names the withheld ones with the reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from gateway.kernel.mcp import UpstreamTool


class CredentialStore(Protocol):
    async def token(self, subject: str, server: str) -> str | None: ...

    async def put(self, subject: str, server: str, token: str) -> None: ...

    async def delete(self, subject: str, server: str) -> bool: ...


@dataclass(frozen=True, slots=True)
class Admitted:
    offered: tuple[UpstreamTool, ...]
    held: dict[str, str] = field(default_factory=dict)  # tool name -> why it is withheld
    flagged: dict[str, str] = field(default_factory=dict)  # offered, but changed or suspicious


class DefinitionGuard(Protocol):
    async def admit(self, server: str, tools: Sequence[UpstreamTool]) -> Admitted: ...


class NoCredentials:
    """Before a store is configured: no subject has a token."""

    async def token(self, subject: str, server: str) -> str | None:
        return None

    async def put(self, subject: str, server: str, token: str) -> None:
        raise LookupError("no credential store is configured (mcp.credentials_key)")

    async def delete(self, subject: str, server: str) -> bool:
        return False


class AdmitAll:
    """Offers every tool unchanged (no pinning, no scanning)."""

    async def admit(self, server: str, tools: Sequence[UpstreamTool]) -> Admitted:
        return Admitted(tuple(tools))
