"""Bearer → Principal: static keys, virtual keys (store behind a TTL cache) and JWTs."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Mapping

from gateway.kernel.config.sections.auth import AuthSettings, StaticKey
from gateway.kernel.context import Principal
from gateway.kernel.errors import AuthenticationFailed
from gateway.services.identity.jwt import JWT_KEY_PREFIX, JwtVerifier, looks_like_jwt
from gateway.services.identity.secrets import KeyHasher, same
from gateway.services.identity.types import KeyExists, KeyRecord, KeyStore

_MISSING = (
    "You didn't provide an API key. You need to provide your API key in an Authorization header "
    "using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or in an x-api-key header."
)


def bearer(headers: Mapping[str, str]) -> str | None:
    """The credential from ``Authorization: Bearer ...`` (or ``x-api-key``), if any."""
    value = headers.get("authorization")
    if value is not None:
        scheme, _, token = value.partition(" ")
        if scheme.lower() != "bearer":
            return None
        return token.strip() or None
    return headers.get("x-api-key") or None


class KeyCache:
    """A small LRU of hash → (record or None, expiry). Negative entries keep floods off the store."""

    def __init__(self, size: int, ttl_s: float) -> None:
        self._size = size
        self._ttl_s = ttl_s
        self._entries: OrderedDict[str, tuple[KeyRecord | None, float]] = OrderedDict()

    def get(self, key_hash: str, now: float) -> tuple[bool, KeyRecord | None]:
        entry = self._entries.get(key_hash)
        if entry is None or entry[1] <= now:
            return False, None
        self._entries.move_to_end(key_hash)
        return True, entry[0]

    def put(self, key_hash: str, record: KeyRecord | None, now: float) -> None:
        self._entries[key_hash] = (record, now + self._ttl_s)
        self._entries.move_to_end(key_hash)
        while len(self._entries) > self._size:
            self._entries.popitem(last=False)

    def forget(self, key_id: str) -> None:
        for h in [h for h, (r, _) in self._entries.items() if r is not None and r.key_id == key_id]:
            del self._entries[h]


class Authenticator:
    def __init__(self, settings: AuthSettings, store: KeyStore, hasher: KeyHasher) -> None:
        self.hasher = hasher
        self.store = store
        self._static = {hasher.hash(k.key.get_secret_value()): _static_identity(k) for k in settings.static_keys}
        self._static_ids = frozenset(k.key_id for k in settings.static_keys)
        self._cache = KeyCache(settings.cache_size, settings.cache_ttl_s)
        self._jwt = JwtVerifier(settings.jwt) if settings.jwt is not None else None

    async def authenticate(self, headers: Mapping[str, str]) -> Principal:
        """Raises ``AuthenticationFailed`` (401) for a missing, unknown, revoked or expired credential."""
        token = bearer(headers)
        if token is None:
            raise AuthenticationFailed(_MISSING)
        if self._jwt is not None and looks_like_jwt(token):
            return await self._jwt.verify(token)
        key_hash = self.hasher.hash(token)
        static = self._static.get(key_hash)
        if static is not None:
            return static
        record = await self._lookup(key_hash)
        if record is None or not same(record.key_hash, key_hash) or not record.usable(time.time()):
            raise AuthenticationFailed(f"Incorrect API key provided: {_redacted(token)}.")
        if self.is_static(record.key_id):  # a row stored before ids were checked: it must not pose as the static key
            raise AuthenticationFailed("This key's id belongs to a static key; an admin must issue a new key.")
        return record.identity()

    def is_static(self, key_id: str) -> bool:
        """Whether ``key_id`` is a static key's (from the config; the admin API does not manage those)."""
        return key_id in self._static_ids

    async def create(self, record: KeyRecord) -> None:
        """Store a new virtual key. Raises ``KeyExists`` if its id is a static key's, a JWT bearer's or taken:
        limits, budgets and usage are kept per key id, so two credentials must never share one."""
        if self.is_static(record.key_id):
            raise KeyExists(f"Key id {record.key_id!r} belongs to a static key (auth.static_keys).")
        if record.key_id.startswith(JWT_KEY_PREFIX):
            raise KeyExists(f"Key ids starting with {JWT_KEY_PREFIX!r} belong to JWT bearers.")
        await self.store.create(record)

    async def _lookup(self, key_hash: str) -> KeyRecord | None:
        now = time.monotonic()
        hit, record = self._cache.get(key_hash, now)
        if not hit:
            record = await self.store.by_hash(key_hash)
            self._cache.put(key_hash, record, now)
        return record

    def forget(self, key_id: str) -> None:
        """Drop a key from this process's cache (after a revoke or rotate)."""
        self._cache.forget(key_id)


def _static_identity(key: StaticKey) -> Principal:
    return Principal(
        tenant=key.tenant, key_id=key.key_id, roles=key.roles, claims={}, metadata=key.metadata,
        models=key.models, rpm=key.rpm, tpm=key.tpm, budget_usd=key.budget_usd,
    )


def _redacted(token: str) -> str:
    return f"{token[:6]}***{token[-4:]}" if len(token) > 12 else "***"
