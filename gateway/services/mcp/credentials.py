"""Upstream MCP tokens per (subject, server), encrypted at rest in PostgreSQL.

Each token is sealed with AES-256-GCM under a key derived (HKDF-SHA256) from ``mcp.credentials_key``, a
fresh 96-bit nonce per write, and associated data binding the row's (subject, server): a ciphertext copied
to another subject's or server's row does not open. A token is only ever read for the subject it was
stored for; nothing here logs or returns one, except ``token`` to the caller that injects it upstream.
The listing shows the server, when it was stored and a fingerprint (a keyed hash, useless without the key).

A token obtained by OAuth (``oauth.py``) comes with its expiry and a refresh token, sealed the same way
(its own associated data): ``token`` refreshes an expired one through ``refresh`` and stores the new grant;
one that cannot be refreshed reads as none (the caller signs in again).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from gateway.kernel.observability.logging import JsonLog
from gateway.services.mcp.pool import McpPool

if TYPE_CHECKING:
    from gateway.services.mcp.oauth import OAuthFlows

_NONCE = 12
_SKEW_S = 30  # an access token this close to its expiry is refreshed first
MAX_TOKEN_BYTES = 16_384


class Unreadable(Exception):
    """A sealed token that does not open with this key and this (subject, server)."""


@dataclass(frozen=True, slots=True)
class Sealed:
    nonce: bytes
    ciphertext: bytes
    key_id: str
    fingerprint: str


@dataclass(frozen=True, slots=True)
class Grant:
    """What an authorization server issued: the access token, maybe a refresh token and an expiry."""

    access_token: str
    refresh_token: str | None = None
    expires_at: int | None = None


Refresh = Callable[[str, str], Awaitable[Grant | None]]  # (server, refresh token) -> a new grant, or None


@dataclass(frozen=True, slots=True)
class StoredCredential:
    """What a caller may see of a stored token: never the token."""

    server: str
    updated_at: int
    fingerprint: str

    def to_json(self) -> dict[str, object]:
        return {"object": "mcp.credential", "server": self.server, "updated_at": self.updated_at,
                "fingerprint": self.fingerprint}


class Sealer:
    """AES-256-GCM with (subject, server) as associated data; ``key`` is the 32-byte configured key."""

    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ValueError("mcp.credentials_key: must be 32 bytes")
        self._aead = AESGCM(_derive(key, b"llmops.mcp.credentials/aes-256-gcm"))
        self._mac = _derive(key, b"llmops.mcp.credentials/fingerprint")
        self.key_id = hmac.new(self._mac, b"key-id", hashlib.sha256).hexdigest()[:16]

    def seal(self, subject: str, server: str, token: str, purpose: str = "token") -> Sealed:
        nonce = os.urandom(_NONCE)
        ciphertext = self._aead.encrypt(nonce, token.encode(), _aad(subject, server, purpose))
        return Sealed(nonce, ciphertext, self.key_id, self.fingerprint(token))

    def open(self, subject: str, server: str, nonce: bytes, ciphertext: bytes, purpose: str = "token") -> str:
        try:
            return self._aead.decrypt(nonce, ciphertext, _aad(subject, server, purpose)).decode()
        except (InvalidTag, ValueError, UnicodeDecodeError):
            raise Unreadable(f"the stored token for {server!r} does not open for this subject and key") from None

    def fingerprint(self, token: str) -> str:
        return "hmac-sha256:" + hmac.new(self._mac, token.encode(), hashlib.sha256).hexdigest()[:16]


def _derive(key: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(key)


def _aad(subject: str, server: str, purpose: str) -> bytes:
    """Unambiguous: JSON of the pair, so ("a/b", "c") and ("a", "b/c") never share associated data; a
    refresh token or a PKCE verifier (``purpose``) never opens as an access token."""
    label = ["llmops.mcp.credential/v1", subject, server] + ([] if purpose == "token" else [purpose])
    return json.dumps(label, separators=(",", ":")).encode()


class PostgresCredentials:
    """The ``CredentialStore`` (``ports.py``) on the shared pool, plus ``stored`` for the caller's own list."""

    def __init__(self, pool: McpPool, sealer: Sealer, log: JsonLog | None = None) -> None:
        self.pool = pool
        self.sealer = sealer
        self._log = log
        self.refresh: Refresh | None = None  # set by the OAuth flows when a server has an ``oauth`` block
        self.oauth: OAuthFlows | None = None  # sign-ins, for servers with an ``oauth`` block

    async def token(self, subject: str, server: str) -> str | None:
        async with self.pool.connection() as conn:
            cur = await conn.execute("SELECT nonce, ciphertext, refresh_nonce, refresh_ciphertext, expires_at "
                                     "FROM llmops_mcp_credentials WHERE subject = %s AND server = %s",
                                     (subject, server))
            row = await cur.fetchone()
        if row is None:
            return None
        try:
            if row[4] is not None and int(row[4]) <= time.time() + _SKEW_S:
                refresh = None if row[2] is None else self.sealer.open(subject, server, bytes(row[2]),
                                                                         bytes(row[3]), "refresh")
                return await self._refreshed(subject, server, refresh)
            return self.sealer.open(subject, server, bytes(row[0]), bytes(row[1]))
        except Unreadable:
            self._warn("mcp_credential_unreadable", subject, server)  # another key, or a row copied elsewhere
            return None

    async def _refreshed(self, subject: str, server: str, refresh_token: str | None) -> str | None:
        grant = None
        if refresh_token is not None and self.refresh is not None:
            grant = await self.refresh(server, refresh_token)
        if grant is None:
            self._warn("mcp_credential_expired", subject, server)
            return None
        await self.store(subject, server, grant.access_token, grant.refresh_token or refresh_token,
                         grant.expires_at)
        return grant.access_token

    def _warn(self, event: str, subject: str, server: str) -> None:
        if self._log is not None:
            self._log.warning(event, subject=subject, server=server)

    async def put(self, subject: str, server: str, token: str) -> None:
        await self.store(subject, server, token)

    async def store(self, subject: str, server: str, token: str, refresh_token: str | None = None,
                    expires_at: int | None = None) -> StoredCredential:
        if not token or len(token.encode()) > MAX_TOKEN_BYTES:
            raise ValueError(f"a token is 1 to {MAX_TOKEN_BYTES} bytes")
        sealed = self.sealer.seal(subject, server, token)
        refresh = self.sealer.seal(subject, server, refresh_token, "refresh") if refresh_token else None
        now = int(time.time())
        async with self.pool.connection() as conn:
            await conn.execute(
                "INSERT INTO llmops_mcp_credentials (subject, server, nonce, ciphertext, key_id, fingerprint, "
                "updated_at, refresh_nonce, refresh_ciphertext, expires_at) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (subject, server) DO UPDATE SET "
                "nonce = EXCLUDED.nonce, ciphertext = EXCLUDED.ciphertext, key_id = EXCLUDED.key_id, "
                "fingerprint = EXCLUDED.fingerprint, updated_at = EXCLUDED.updated_at, "
                "refresh_nonce = EXCLUDED.refresh_nonce, refresh_ciphertext = EXCLUDED.refresh_ciphertext, "
                "expires_at = EXCLUDED.expires_at",
                (subject, server, sealed.nonce, sealed.ciphertext, sealed.key_id, sealed.fingerprint, now,
                 refresh.nonce if refresh else None, refresh.ciphertext if refresh else None, expires_at))
        return StoredCredential(server, now, sealed.fingerprint)

    async def delete(self, subject: str, server: str) -> bool:
        async with self.pool.connection() as conn:
            cur = await conn.execute("DELETE FROM llmops_mcp_credentials WHERE subject = %s AND server = %s",
                                     (subject, server))
            return cur.rowcount > 0

    async def stored(self, subject: str) -> list[StoredCredential]:
        """The subject's own tokens, as the server, when and a fingerprint (never a token)."""
        async with self.pool.connection() as conn:
            cur = await conn.execute("SELECT server, updated_at, fingerprint FROM llmops_mcp_credentials "
                                     "WHERE subject = %s ORDER BY server", (subject,))
            rows = await cur.fetchall()
        return [StoredCredential(str(r[0]), int(r[1]), str(r[2])) for r in rows]
