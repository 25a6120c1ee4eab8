"""JWT bearers verified in Python (pyjwt) against a JWKS file or URL; claims map to tenant and roles."""

from __future__ import annotations

import asyncio
import time
import urllib.request
from pathlib import Path
from typing import Any

import jwt

from gateway.kernel.config.sections.auth import JwtSettings
from gateway.kernel.context import Principal
from gateway.kernel.errors import AuthenticationFailed


def looks_like_jwt(token: str) -> bool:
    return token.count(".") == 2 and token.startswith("ey")


class JwtVerifier:
    def __init__(self, settings: JwtSettings) -> None:
        if not settings.jwks_file and not settings.jwks_url:
            raise ValueError("auth.jwt: set jwks_file or jwks_url")
        self._settings = settings
        self._jwks: jwt.PyJWKSet | None = None
        self._loaded_at = 0.0
        self._lock = asyncio.Lock()

    async def verify(self, token: str) -> Principal:
        s = self._settings
        try:
            key = await self._key_for(jwt.get_unverified_header(token).get("kid"))
            claims: dict[str, Any] = jwt.decode(
                token, key, algorithms=list(s.algorithms), audience=s.audience, issuer=s.issuer,
                leeway=s.leeway_s, options={"require": ["exp", "sub"], "verify_aud": s.audience is not None},
            )
        except jwt.PyJWTError as exc:
            raise AuthenticationFailed(f"Invalid bearer token: {exc}.") from exc
        except OSError as exc:
            raise AuthenticationFailed("The bearer token cannot be verified now (JWKS unavailable).") from exc
        return self._identity(claims)

    def _identity(self, claims: dict[str, Any]) -> Principal:
        s = self._settings
        tenant = claims.get(s.tenant_claim)
        if not isinstance(tenant, str) or not tenant:
            raise AuthenticationFailed(f"The bearer token has no {s.tenant_claim!r} claim.")
        return Principal(
            tenant=tenant,
            key_id=f"jwt:{claims['sub']}",
            roles=_names(claims.get(s.roles_claim)),
            claims=claims,
            models=_names(claims.get(s.models_claim)),
        )

    async def _key_for(self, kid: Any) -> Any:
        jwks = await self._keyset()
        if kid is None and len(jwks.keys) == 1:
            return jwks.keys[0].key
        for candidate in jwks.keys:
            if candidate.key_id == kid:
                return candidate.key
        raise jwt.InvalidKeyError(f"unknown key id {kid!r}")

    async def _keyset(self) -> jwt.PyJWKSet:
        fresh = time.monotonic() - self._loaded_at < self._settings.jwks_cache_s
        if self._jwks is not None and fresh:
            return self._jwks
        async with self._lock:
            if self._jwks is None or time.monotonic() - self._loaded_at >= self._settings.jwks_cache_s:
                self._jwks = jwt.PyJWKSet.from_json(await asyncio.to_thread(self._fetch))
                self._loaded_at = time.monotonic()
            return self._jwks

    def _fetch(self) -> str:
        s = self._settings
        if s.jwks_file:
            return Path(s.jwks_file).read_text(encoding="utf-8")
        assert s.jwks_url is not None
        with urllib.request.urlopen(s.jwks_url, timeout=5) as resp:
            body: bytes = resp.read()
        return body.decode()


def _names(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return tuple(value.split())
    if isinstance(value, list):
        return tuple(str(v) for v in value)
    return ()
