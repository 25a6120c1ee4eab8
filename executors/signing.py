"""HMAC-SHA256 request signing shared by the node agent and its client.

The signed string is ``METHOD\\nPATH?QUERY\\nTIMESTAMP\\nNONCE\\nsha256(body)``; headers:
``x-llmops-timestamp`` (unix seconds), ``x-llmops-nonce`` (random, single use) and
``x-llmops-signature`` (``v1=`` + hex HMAC). A verifier rejects skew over ``max_skew`` seconds
and any nonce it has seen within the skew window (``NonceCache``).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections import OrderedDict
from collections.abc import Mapping

from executors.errors import AuthError

TIMESTAMP_HEADER = "x-llmops-timestamp"
NONCE_HEADER = "x-llmops-nonce"
SIGNATURE_HEADER = "x-llmops-signature"
MAX_SKEW_SECONDS = 60.0


def _canonical(method: str, path: str, timestamp: str, nonce: str, body: bytes) -> bytes:
    digest = hashlib.sha256(body).hexdigest()
    return "\n".join((method.upper(), path, timestamp, nonce, digest)).encode()


def signature(secret: bytes, method: str, path: str, timestamp: str, nonce: str, body: bytes) -> str:
    mac = hmac.new(secret, _canonical(method, path, timestamp, nonce, body), hashlib.sha256)
    return "v1=" + mac.hexdigest()


def sign(secret: bytes, method: str, path: str, body: bytes, *, now: float | None = None) -> dict[str, str]:
    """Headers that authenticate one request; ``path`` includes the query string if any."""
    timestamp = str(int(time.time() if now is None else now))
    nonce = secrets.token_hex(16)
    return {
        TIMESTAMP_HEADER: timestamp,
        NONCE_HEADER: nonce,
        SIGNATURE_HEADER: signature(secret, method, path, timestamp, nonce, body),
    }


class NonceCache:
    """Nonces seen within the last ``ttl`` seconds, bounded to ``max_size`` entries (oldest evicted)."""

    def __init__(self, ttl: float = 2 * MAX_SKEW_SECONDS, max_size: int = 100_000) -> None:
        self._ttl = ttl
        self._max_size = max_size
        self._seen: OrderedDict[str, float] = OrderedDict()

    def add(self, nonce: str, now: float) -> bool:
        """Record ``nonce``; False if it was already seen (a replay)."""
        self._prune(now)
        if nonce in self._seen:
            return False
        self._seen[nonce] = now + self._ttl
        if len(self._seen) > self._max_size:
            self._seen.popitem(last=False)
        return True

    def _prune(self, now: float) -> None:
        while self._seen:
            nonce, expiry = next(iter(self._seen.items()))
            if expiry > now:
                return
            del self._seen[nonce]


def verify(
    secret: bytes,
    method: str,
    path: str,
    headers: Mapping[str, str],
    body: bytes,
    nonces: NonceCache,
    *,
    now: float | None = None,
    max_skew: float = MAX_SKEW_SECONDS,
) -> None:
    """Raise ``AuthError`` unless the headers sign this exact request, fresh and unreplayed."""
    now = time.time() if now is None else now
    timestamp = headers.get(TIMESTAMP_HEADER, "")
    nonce = headers.get(NONCE_HEADER, "")
    given = headers.get(SIGNATURE_HEADER, "")
    if not (timestamp and nonce and given):
        raise AuthError("missing signature headers")
    try:
        skew = abs(now - int(timestamp))
    except ValueError as exc:
        raise AuthError("bad timestamp") from exc
    if skew > max_skew:
        raise AuthError("timestamp outside the allowed skew")
    expected = signature(secret, method, path, timestamp, nonce, body)
    if not hmac.compare_digest(expected, given):
        raise AuthError("bad signature")
    if not nonces.add(nonce, now):
        raise AuthError("replayed nonce")
