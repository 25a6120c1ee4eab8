"""The key admin API (admin role only): create, list, show, revoke and rotate virtual keys.

    POST   /admin/keys                 {"tenant", "roles", "models", "rpm", "tpm", "budget_usd",
                                        "metadata", "expires_in_s"} → 201 {"key": "sk-...", ...record}
    GET    /admin/keys[?tenant=T]      → {"object": "list", "data": [record, ...]}
    GET    /admin/keys/{key_id}        → record
    DELETE /admin/keys/{key_id}        → record (revoked; also POST /admin/keys/{key_id}/revoke)
    POST   /admin/keys/{key_id}/rotate → {"key": "sk-...", ...record}: the old secret stops working

The secret is shown once, at creation or rotation; only its hash is stored. A key id is never shared: one
taken by a virtual key, a static key (``auth.static_keys``) or a JWT bearer (``jwt:...``) is a 409
``key_exists``; static keys live in the config, so revoking or rotating one here is a 409 ``static_key``.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from msgspec import Meta, Struct
from starlette.requests import Request
from starlette.responses import Response

from gateway.http import validate as v
from gateway.http.parsing import parse_object, validate
from gateway.kernel.context import Principal
from gateway.kernel.errors import InvalidRequest, NotFound
from gateway.services.identity.authenticator import Authenticator
from gateway.services.identity.secrets import new_key_id, new_secret
from gateway.services.identity.types import KeyExists, KeyRecord, KeyStore

Endpoint = Callable[[Request], Awaitable[Response]]


Name = Annotated[str, Meta(min_length=1, max_length=256)]
Count = Annotated[int, Meta(ge=0, le=2**53)]


class NewKey(Struct, forbid_unknown_fields=True):
    """``POST /admin/keys``."""

    tenant: Name
    key_id: Annotated[str, Meta(pattern=r"^[A-Za-z0-9_.:-]{1,128}$")] | None = None
    roles: Annotated[list[Name], Meta(max_length=64)] = []
    models: Annotated[list[Name], Meta(max_length=1024)] = []
    rpm: Count | None = None
    tpm: Count | None = None
    budget_usd: Annotated[float, Meta(ge=0, le=1e12)] | None = None
    metadata: Annotated[dict[Annotated[str, Meta(max_length=64)], Any], Meta(max_length=16)] = {}
    expires_in_s: Annotated[float, Meta(gt=0, le=1e10)] | None = None


class KeyQuery(Struct):
    """``GET /admin/keys`` query: one tenant's keys."""

    tenant: Name | None = None


class UsageQuery(Struct):
    """``GET /admin/usage`` query."""

    tenant: Name | None = None
    key_id: Name | None = None


class KeyAdmin:
    def __init__(self, authenticator: Authenticator, prefix: str) -> None:
        self._auth = authenticator
        self._store: KeyStore = authenticator.store
        self._prefix = prefix

    async def create(self, request: Request, caller: Principal | None) -> dict[str, Any]:
        spec = _parse(await request.body())
        secret = new_secret(self._prefix)
        record = KeyRecord(
            key_id=spec.key_id or new_key_id(), key_hash=self._auth.hasher.hash(secret), tenant=spec.tenant,
            roles=tuple(spec.roles), models=tuple(spec.models), rpm=spec.rpm, tpm=spec.tpm, budget_usd=spec.budget_usd,
            metadata=spec.metadata, expires_at=time.time() + spec.expires_in_s if spec.expires_in_s else None,
        )
        try:
            await self._auth.create(record)
        except KeyExists as exc:
            raise InvalidRequest(str(exc), param="key_id", code="key_exists", status=409) from exc
        return {"key": secret, **record.public()}

    async def list(self, request: Request, caller: Principal | None) -> dict[str, Any]:
        query = validate(dict(request.query_params), KeyQuery, strict=False)
        records = await self._store.list(query.tenant)
        return {"object": "list", "data": [r.public() for r in records]}

    async def show(self, request: Request, caller: Principal | None) -> dict[str, Any]:
        return _found(await self._store.get(request.path_params["key_id"])).public()

    async def revoke(self, request: Request, caller: Principal | None) -> dict[str, Any]:
        record = _found(await self._store.revoke(self._virtual_id(request), time.time()))
        self._auth.forget(record.key_id)
        return record.public()

    async def rotate(self, request: Request, caller: Principal | None) -> dict[str, Any]:
        key_id = self._virtual_id(request)
        secret = new_secret(self._prefix)
        record = _found(await self._store.rotate(key_id, self._auth.hasher.hash(secret)))
        self._auth.forget(key_id)
        return {"key": secret, **record.public()}

    def _virtual_id(self, request: Request) -> str:
        """The path's key id, refused if it names a static key (the config, not this API, manages those)."""
        key_id: str = request.path_params["key_id"]
        if self._auth.is_static(key_id):
            raise InvalidRequest(
                f"Key {key_id!r} is a static key (auth.static_keys): change the configuration to revoke or "
                "rotate it.", param="key_id", code="static_key", status=409,
            )
        return key_id


def _parse(raw: bytes) -> NewKey:
    body = parse_object(raw or b"{}")
    for name, value in body.items():
        v.plain(value, name)
    return validate(body, NewKey)


def _found(record: KeyRecord | None) -> KeyRecord:
    if record is None:
        raise NotFound("No such key (or it is revoked).", code="key_not_found")
    return record
