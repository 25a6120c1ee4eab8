"""The embedded key store: in process, lost on restart (use ``auth.store: postgres`` to keep keys)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from gateway.services.identity.types import KeyExists, KeyRecord


class MemoryKeyStore:
    def __init__(self) -> None:
        self._by_id: dict[str, KeyRecord] = {}
        self._by_hash: dict[str, str] = {}

    async def by_hash(self, key_hash: str) -> KeyRecord | None:
        key_id = self._by_hash.get(key_hash)
        return self._by_id.get(key_id) if key_id is not None else None

    async def get(self, key_id: str) -> KeyRecord | None:
        return self._by_id.get(key_id)

    async def create(self, record: KeyRecord) -> None:
        if record.key_id in self._by_id or record.key_hash in self._by_hash:
            raise KeyExists(f"A key with id {record.key_id!r} exists.")
        self._by_id[record.key_id] = record
        self._by_hash[record.key_hash] = record.key_id

    async def list(self, tenant: str | None = None) -> Sequence[KeyRecord]:
        return [r for r in self._by_id.values() if tenant is None or r.tenant == tenant]

    async def revoke(self, key_id: str, at: float) -> KeyRecord | None:
        record = self._by_id.get(key_id)
        if record is None:
            return None
        if record.revoked_at is None:
            record = dataclasses.replace(record, revoked_at=at)
            self._by_id[key_id] = record
        return record

    async def rotate(self, key_id: str, key_hash: str) -> KeyRecord | None:
        record = self._by_id.get(key_id)
        if record is None or record.revoked_at is not None:
            return None
        self._by_hash.pop(record.key_hash, None)
        record = dataclasses.replace(record, key_hash=key_hash)
        self._by_id[key_id] = record
        self._by_hash[key_hash] = key_id
        return record
