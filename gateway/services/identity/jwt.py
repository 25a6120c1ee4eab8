"""JWT bearers verified in Python (pyjwt) against a JWKS file or URL; claims map to tenant and roles.

A token is checked before any key is used: its header must parse, its ``alg`` must be one of
``auth.jwt.algorithms`` and fit the key its ``kid`` names (the JWK's own ``alg`` if it declares one,
else its key type: ``RS``/``PS`` → RSA, ``ES`` → EC, ``EdDSA`` → OKP, ``HS`` → oct). Anything else is a
401 ``invalid_api_key``; a JWKS that cannot be fetched or read is a 503 ``jwks_unavailable`` (the last
good key set is kept meanwhile, and a failed fetch is not retried for a few seconds).
"""

from __future__ import annotations

import asyncio
import http.client
import json
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt

from gateway.kernel.config.sections.auth import JwtSettings
from gateway.kernel.context import Principal
from gateway.kernel.errors import AuthenticationFailed, GatewayError

JWT_KEY_PREFIX = "jwt:"  # a JWT bearer's principal has the key id "jwt:" + its subject
_RETRY_S = 5.0  # after a failed JWKS fetch, answer 503 (or use the last good set) this long before retrying
_KEY_TYPES = {"RS": "RSA", "PS": "RSA", "ES": "EC", "Ed": "OKP", "HS": "oct"}


class JwksUnavailable(GatewayError):
    """The JWKS could not be fetched or read: the token may be fine, the gateway cannot tell now."""

    status = 503
    error_type = "server_error"
    default_code = "jwks_unavailable"


@dataclass(frozen=True, slots=True)
class Jwk:
    """One usable key of the JWKS, with what it may verify."""

    kid: str | None
    kty: str
    alg: str | None  # as the JWK declares it; None = any algorithm of its key type
    key: Any

    def fits(self, alg: str) -> bool:
        return alg == self.alg if self.alg is not None else _KEY_TYPES.get(alg[:2]) == self.kty


def looks_like_jwt(token: str) -> bool:
    return token.count(".") == 2 and token.startswith("ey")


class JwtVerifier:
    def __init__(self, settings: JwtSettings) -> None:
        if not settings.jwks_file and not settings.jwks_url:
            raise ValueError("auth.jwt: set jwks_file or jwks_url")
        if any(alg.lower() == "none" for alg in settings.algorithms):
            raise ValueError("auth.jwt.algorithms: 'none' would accept unsigned tokens")
        self._settings = settings
        self._keys: list[Jwk] | None = None
        self._fresh_until = 0.0
        self._retry_at = 0.0
        self._lock = asyncio.Lock()

    async def verify(self, token: str) -> Principal:
        """Raises ``AuthenticationFailed`` (401) for a bad token, ``JwksUnavailable`` (503) without keys."""
        alg, kid = self._header(token)
        key = _pick(await self._keyset(), alg, kid)
        s = self._settings
        try:
            claims: dict[str, Any] = jwt.decode(
                token, key.key, algorithms=[alg], audience=s.audience, issuer=s.issuer,
                leeway=s.leeway_s, options={"require": ["exp", "sub"], "verify_aud": s.audience is not None},
            )
        except jwt.PyJWTError as exc:
            raise AuthenticationFailed(f"Invalid bearer token: {exc}.") from exc
        except (TypeError, ValueError) as exc:  # a key pyjwt cannot use for this algorithm
            raise AuthenticationFailed("Invalid bearer token: its key does not fit its algorithm.") from exc
        return self._identity(claims)

    def _header(self, token: str) -> tuple[str, str | None]:
        """The token's ``alg`` (one of ``auth.jwt.algorithms``) and ``kid``, read before any key is used."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise AuthenticationFailed(f"Invalid bearer token: {exc}.") from exc
        alg, kid = header.get("alg"), header.get("kid")
        if not isinstance(alg, str) or alg not in self._settings.algorithms:
            raise AuthenticationFailed(
                f"Invalid bearer token: the algorithm {alg!r} is not accepted "
                f"(accepted: {', '.join(self._settings.algorithms)})."
            )
        if kid is not None and not isinstance(kid, str):
            raise AuthenticationFailed("Invalid bearer token: its 'kid' is not a string.")
        return alg, kid

    def _identity(self, claims: dict[str, Any]) -> Principal:
        s = self._settings
        tenant = claims.get(s.tenant_claim)
        if not isinstance(tenant, str) or not tenant:
            raise AuthenticationFailed(f"The bearer token has no {s.tenant_claim!r} claim.")
        return Principal(
            tenant=tenant,
            key_id=f"{JWT_KEY_PREFIX}{claims['sub']}",
            roles=_names(claims.get(s.roles_claim)),
            claims=claims,
            models=_names(claims.get(s.models_claim)),
        )

    async def _keyset(self) -> list[Jwk]:
        if self._keys is None or time.monotonic() >= self._fresh_until:
            async with self._lock:
                if self._keys is None or time.monotonic() >= self._fresh_until:
                    await self._refresh()
        if self._keys is None:
            raise JwksUnavailable("The bearer token cannot be verified now: the JWKS is unavailable.")
        return self._keys

    async def _refresh(self) -> None:
        """Fetch the key set; on failure keep the last good one and wait ``_RETRY_S`` before trying again."""
        if time.monotonic() < self._retry_at:
            return
        try:
            self._keys = parse_jwks(await asyncio.to_thread(self._fetch))
            self._fresh_until = time.monotonic() + self._settings.jwks_cache_s
        except (OSError, ValueError, http.client.HTTPException):
            self._retry_at = time.monotonic() + _RETRY_S

    def _fetch(self) -> str:
        s = self._settings
        if s.jwks_file:
            return Path(s.jwks_file).read_text(encoding="utf-8")
        assert s.jwks_url is not None
        with urllib.request.urlopen(s.jwks_url, timeout=5) as resp:
            body: bytes = resp.read()
        return body.decode()


def parse_jwks(text: str) -> list[Jwk]:
    """The usable keys of a JWKS document; ``ValueError`` if it is not one or has none."""
    doc: Any = json.loads(text)
    entries = doc.get("keys") if isinstance(doc, dict) else None
    if not isinstance(entries, list):
        raise ValueError("not a JWKS document")
    keys = [key for key in map(_jwk, entries) if key is not None]
    if not keys:
        raise ValueError("the JWKS has no usable key")
    return keys


def _jwk(entry: Any) -> Jwk | None:
    if not isinstance(entry, dict) or entry.get("use", "sig") != "sig":
        return None
    try:
        parsed = jwt.PyJWK(entry)
    except (jwt.PyJWTError, TypeError, ValueError):
        return None  # a key type or curve pyjwt does not know: skipped, like PyJWKSet does
    kid, alg = entry.get("kid"), entry.get("alg")
    return Jwk(kid if isinstance(kid, str) else None, str(entry.get("kty")),
               alg if isinstance(alg, str) else None, parsed.key)


def _pick(keys: list[Jwk], alg: str, kid: str | None) -> Jwk:
    """The key the token names that fits its algorithm (or the only fitting key, when it names none)."""
    named = keys if kid is None else [k for k in keys if k.kid == kid]
    if not named:
        raise AuthenticationFailed(f"Invalid bearer token: unknown key id {kid!r}.")
    fitting = [k for k in named if k.fits(alg)]
    if not fitting:
        raise AuthenticationFailed(f"Invalid bearer token: no key of the JWKS fits the algorithm {alg!r}.")
    if kid is None and len(fitting) > 1:
        raise AuthenticationFailed("Invalid bearer token: it names no key ('kid') and several could apply.")
    return fitting[0]


def _names(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return tuple(value.split())
    if isinstance(value, list):
        return tuple(str(v) for v in value)
    return ()
