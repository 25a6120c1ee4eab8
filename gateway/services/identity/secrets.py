"""Key generation and hashing. Keys carry 256 bits of entropy, so one keyed hash suffices (no KDF)."""

from __future__ import annotations

import hashlib
import hmac
import secrets


class KeyHasher:
    """HMAC-SHA-256 with a server pepper, or SHA-256 when no pepper is configured."""

    def __init__(self, pepper: bytes | None) -> None:
        self._pepper = pepper

    def hash(self, key: str) -> str:
        raw = key.encode()
        if self._pepper is None:
            return hashlib.sha256(raw).hexdigest()
        return hmac.new(self._pepper, raw, hashlib.sha256).hexdigest()


def new_secret(prefix: str) -> str:
    return prefix + secrets.token_urlsafe(32)


def new_key_id() -> str:
    return "key_" + secrets.token_hex(8)


def same(a: str, b: str) -> bool:
    """Constant-time comparison of two hashes."""
    return hmac.compare_digest(a.encode(), b.encode())
