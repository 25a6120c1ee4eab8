"""Key records, the authenticated identity, and the key store contract."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from gateway.kernel.context import Principal


class KeyExists(ValueError):
    """A key id (or key hash) is taken: by another virtual key, or by a static key of the config."""


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """A virtual key as stored: only the hash of the secret, never the secret."""

    key_id: str
    key_hash: str
    tenant: str
    roles: tuple[str, ...] = ()
    models: tuple[str, ...] = ()
    rpm: int | None = None
    tpm: int | None = None
    budget_usd: float | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    created_at: float = field(default_factory=time.time)
    expires_at: float | None = None
    revoked_at: float | None = None

    def usable(self, now: float) -> bool:
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)

    def identity(self) -> Principal:
        return Principal(
            tenant=self.tenant,
            key_id=self.key_id,
            roles=self.roles,
            claims={},
            metadata=self.metadata,
            models=self.models,
            rpm=self.rpm,
            tpm=self.tpm,
            budget_usd=self.budget_usd,
        )

    def public(self) -> dict[str, Any]:
        """The record as the admin API shows it (no hash)."""
        out = asdict(self)
        del out["key_hash"]
        out["roles"] = list(self.roles)
        out["models"] = list(self.models)
        out["status"] = "revoked" if self.revoked_at else ("expired" if not self.usable(time.time()) else "active")
        return out


class KeyStore(Protocol):
    async def by_hash(self, key_hash: str) -> KeyRecord | None: ...

    async def get(self, key_id: str) -> KeyRecord | None: ...

    async def create(self, record: KeyRecord) -> None:
        """Store a new key; raises ``KeyExists`` if its id (or hash) is taken."""
        ...

    async def list(self, tenant: str | None = None) -> Sequence[KeyRecord]: ...

    async def revoke(self, key_id: str, at: float) -> KeyRecord | None: ...

    async def rotate(self, key_id: str, key_hash: str) -> KeyRecord | None: ...

