"""Per-party Ed25519 signatures: who signed, for whom, fresh, unreplayed; key files 0600 only."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from executors.errors import AuthError
from executors.signing import (
    CONTROL_PLANE,
    NONCE_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    NonceCache,
    fingerprint,
    load_key,
    load_or_create_key,
    load_public,
    public_text,
    sign,
    verify,
)

KEY = Ed25519PrivateKey.generate()
PUBLIC = KEY.public_key()


def signed(now: float = 1000, audience: str = "n1") -> dict[str, str]:
    return sign(KEY, "POST", "/v1/jobs", b"{}", signer=CONTROL_PLANE, audience=audience, now=now)


def check(headers: dict[str, str], *, method: str = "POST", path: str = "/v1/jobs", body: bytes = b"{}",
          audience: str = "n1", nonces: NonceCache | None = None, now: float = 1000,
          key: Ed25519PrivateKey = KEY) -> None:
    verify(key.public_key(), method, path, headers, body, signer=CONTROL_PLANE, audience=audience,
           nonces=nonces if nonces is not None else NonceCache(), now=now)


def test_roundtrip_verifies() -> None:
    check(signed(), now=1010)


@pytest.mark.parametrize(
    ("method", "path", "body", "key"),
    [
        ("GET", "/v1/jobs", b"{}", KEY),
        ("POST", "/v1/status", b"{}", KEY),
        ("POST", "/v1/jobs", b"{ }", KEY),
        ("POST", "/v1/jobs", b"{}", Ed25519PrivateKey.generate()),
    ],
)
def test_any_change_or_another_key_breaks_the_signature(method: str, path: str, body: bytes,
                                                        key: Ed25519PrivateKey) -> None:
    with pytest.raises(AuthError, match="bad signature"):
        check(signed(), method=method, path=path, body=body, key=key)


def test_a_message_for_one_node_is_refused_by_another() -> None:
    with pytest.raises(AuthError, match="expected 'control-plane' for 'n2'"):
        check(signed(audience="n1"), audience="n2")
    forged = {**signed(audience="n1"), "x-llmops-audience": "n2"}
    with pytest.raises(AuthError, match="bad signature"):
        check(forged, audience="n2")


def test_skew_over_60s_is_rejected() -> None:
    with pytest.raises(AuthError, match="skew"):
        check(signed(now=1000), now=1061)


def test_replay_is_rejected() -> None:
    nonces = NonceCache()
    headers = signed()
    check(headers, nonces=nonces)
    with pytest.raises(AuthError, match="replayed"):
        check(headers, nonces=nonces, now=1001)


@pytest.mark.parametrize("missing", [TIMESTAMP_HEADER, NONCE_HEADER, SIGNATURE_HEADER])
def test_missing_header_is_rejected(missing: str) -> None:
    headers = signed()
    del headers[missing]
    with pytest.raises(AuthError):
        check(headers)


def test_nonce_cache_expires_and_is_bounded() -> None:
    cache = NonceCache(ttl=10, max_size=2)
    assert cache.add("a", 0) and not cache.add("a", 5)
    assert cache.add("a", 11)
    cache.add("b", 11)
    cache.add("c", 11)
    assert cache.add("a", 12)  # evicted by size


def test_public_keys_travel_as_text() -> None:
    text = public_text(KEY)
    assert public_text(load_public(text)) == text and len(fingerprint(text)) == 32
    with pytest.raises(AuthError):
        load_public("bm90IGEga2V5")


def test_key_files_are_0600_and_never_followed(tmp_path: Path) -> None:
    path = tmp_path / "node.key"
    key = load_or_create_key(path)
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert public_text(load_key(path)) == public_text(key)
    os.chmod(path, 0o644)
    with pytest.raises(AuthError, match="0600"):
        load_key(path)
    link = tmp_path / "link.key"
    link.symlink_to(path)
    with pytest.raises(OSError):
        load_or_create_key(link)
