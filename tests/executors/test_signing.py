from __future__ import annotations

import pytest

from executors.errors import AuthError
from executors.signing import NONCE_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, NonceCache, sign, verify

SECRET = b"s3cret"


def test_roundtrip_verifies() -> None:
    headers = sign(SECRET, "POST", "/v1/jobs", b"{}", now=1000)
    verify(SECRET, "POST", "/v1/jobs", headers, b"{}", NonceCache(), now=1010)


@pytest.mark.parametrize(
    ("method", "path", "body", "secret"),
    [
        ("GET", "/v1/jobs", b"{}", SECRET),
        ("POST", "/v1/status", b"{}", SECRET),
        ("POST", "/v1/jobs", b"{ }", SECRET),
        ("POST", "/v1/jobs", b"{}", b"other"),
    ],
)
def test_any_change_breaks_the_signature(method: str, path: str, body: bytes, secret: bytes) -> None:
    headers = sign(SECRET, "POST", "/v1/jobs", b"{}", now=1000)
    with pytest.raises(AuthError, match="bad signature"):
        verify(secret, method, path, headers, body, NonceCache(), now=1000)


def test_skew_over_60s_is_rejected() -> None:
    headers = sign(SECRET, "POST", "/p", b"", now=1000)
    with pytest.raises(AuthError, match="skew"):
        verify(SECRET, "POST", "/p", headers, b"", NonceCache(), now=1061)


def test_replay_is_rejected() -> None:
    nonces = NonceCache()
    headers = sign(SECRET, "POST", "/p", b"", now=1000)
    verify(SECRET, "POST", "/p", headers, b"", nonces, now=1000)
    with pytest.raises(AuthError, match="replayed"):
        verify(SECRET, "POST", "/p", headers, b"", nonces, now=1001)


@pytest.mark.parametrize("missing", [TIMESTAMP_HEADER, NONCE_HEADER, SIGNATURE_HEADER])
def test_missing_header_is_rejected(missing: str) -> None:
    headers = sign(SECRET, "POST", "/p", b"", now=1000)
    del headers[missing]
    with pytest.raises(AuthError):
        verify(SECRET, "POST", "/p", headers, b"", NonceCache(), now=1000)


def test_nonce_cache_expires_and_is_bounded() -> None:
    cache = NonceCache(ttl=10, max_size=2)
    assert cache.add("a", 0) and not cache.add("a", 5)
    assert cache.add("a", 11)
    cache.add("b", 11)
    cache.add("c", 11)
    assert cache.add("a", 12)  # evicted by size
