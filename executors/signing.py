"""Per-party Ed25519 signatures for the node channel, and the 0600 key files that hold the keys.

Every message names who signed it and for whom: the signed string is
``v2\\nMETHOD\\nPATH?QUERY\\nTIMESTAMP\\nNONCE\\nSIGNER\\nAUDIENCE\\nsha256(body)``; headers:
``x-llmops-timestamp`` (unix seconds), ``x-llmops-nonce`` (random, single use), ``x-llmops-signer``,
``x-llmops-audience`` and ``x-llmops-signature`` (``ed25519=`` + base64). Nodes sign with their own
key (signer = node id, audience = ``control-plane``); the control plane signs with its key (signer =
``control-plane``, audience = the node id), so a job signed for one node is refused by every other.
A verifier rejects skew over ``max_skew`` seconds and any nonce it has seen (``NonceCache``).

A response is signed by the node with ``METHOD = "RESPONSE <status>"`` and the *request's* nonce,
which binds the answer to the one request it answers.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
import stat
import time
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from executors.errors import AuthError

TIMESTAMP_HEADER = "x-llmops-timestamp"
NONCE_HEADER = "x-llmops-nonce"
SIGNER_HEADER = "x-llmops-signer"
AUDIENCE_HEADER = "x-llmops-audience"
SIGNATURE_HEADER = "x-llmops-signature"
CONTROL_PLANE = "control-plane"
MAX_SKEW_SECONDS = 60.0
_PREFIX = "ed25519="


def audience(node_id: str, boot: str) -> str:
    """Who a job is for: one node id and one run of its process (``boot``, random per process)."""
    return f"{node_id}@{boot}" if boot else node_id


def _canonical(method: str, path: str, timestamp: str, nonce: str, signer: str, audience: str,
               body: bytes) -> bytes:
    digest = hashlib.sha256(body).hexdigest()
    return "\n".join(("v2", method.upper(), path, timestamp, nonce, signer, audience, digest)).encode()


def sign(key: Ed25519PrivateKey, method: str, path: str, body: bytes, *, signer: str, audience: str,
         nonce: str | None = None, now: float | None = None) -> dict[str, str]:
    """Headers that authenticate one message from ``signer`` to ``audience``; ``path`` includes the query."""
    timestamp = str(int(time.time() if now is None else now))
    nonce = nonce or secrets.token_hex(16)
    raw = key.sign(_canonical(method, path, timestamp, nonce, signer, audience, body))
    return {
        TIMESTAMP_HEADER: timestamp,
        NONCE_HEADER: nonce,
        SIGNER_HEADER: signer,
        AUDIENCE_HEADER: audience,
        SIGNATURE_HEADER: _PREFIX + base64.b64encode(raw).decode(),
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
    key: Ed25519PublicKey,
    method: str,
    path: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    signer: str,
    audience: str,
    nonces: NonceCache | None,
    now: float | None = None,
    max_skew: float = MAX_SKEW_SECONDS,
) -> None:
    """Raise ``AuthError`` unless ``signer`` signed this exact message for ``audience``, fresh and unreplayed.

    ``nonces`` None: the caller checks the nonce itself (a response carries its request's nonce).
    """
    now = time.time() if now is None else now
    timestamp, nonce = headers.get(TIMESTAMP_HEADER, ""), headers.get(NONCE_HEADER, "")
    given = headers.get(SIGNATURE_HEADER, "")
    if not (timestamp and nonce and given.startswith(_PREFIX)):
        raise AuthError("missing signature headers")
    if headers.get(SIGNER_HEADER) != signer or headers.get(AUDIENCE_HEADER) != audience:
        raise AuthError(f"signed by {headers.get(SIGNER_HEADER)!r} for {headers.get(AUDIENCE_HEADER)!r}, "
                        f"expected {signer!r} for {audience!r}")
    _check_skew(timestamp, now, max_skew)
    try:
        raw = base64.b64decode(given[len(_PREFIX):], validate=True)
        key.verify(raw, _canonical(method, path, timestamp, nonce, signer, audience, body))
    except (ValueError, InvalidSignature) as exc:
        raise AuthError("bad signature") from exc
    if nonces is not None and not nonces.add(nonce, now):
        raise AuthError("replayed nonce")


def _check_skew(timestamp: str, now: float, max_skew: float) -> None:
    try:
        skew = abs(now - int(timestamp))
    except ValueError as exc:
        raise AuthError("bad timestamp") from exc
    if skew > max_skew:
        raise AuthError("timestamp outside the allowed skew")


# --- keys ----------------------------------------------------------------------------------------


def public_text(key: Ed25519PrivateKey | Ed25519PublicKey) -> str:
    """The raw 32-byte public key, base64: how keys travel in enrollment and in the node book."""
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return base64.b64encode(public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)).decode()


def load_public(text: str) -> Ed25519PublicKey:
    """Inverse of ``public_text``; ``AuthError`` if it is not a 32-byte Ed25519 key."""
    try:
        return Ed25519PublicKey.from_public_bytes(base64.b64decode(text, validate=True))
    except ValueError as exc:
        raise AuthError("not an Ed25519 public key") from exc


def fingerprint(public: str) -> str:
    """Short hex SHA-256 of a public key's text (what a join token pins)."""
    return hashlib.sha256(public.encode()).hexdigest()[:32]


def write_private(path: Path, data: bytes) -> None:
    """Create ``path`` 0600, never following a symlink and never overwriting (``O_EXCL|O_NOFOLLOW``)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)


def read_private(path: Path) -> bytes:
    """Read a key file; ``AuthError`` if it is a symlink or readable by group or others."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    with os.fdopen(fd, "rb") as handle:
        mode = os.fstat(handle.fileno()).st_mode
        if not stat.S_ISREG(mode) or mode & 0o077:
            raise AuthError(f"{path} must be a regular file with mode 0600")
        return handle.read()


def save_key(path: Path, key: Ed25519PrivateKey) -> None:
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    write_private(path, pem)


def load_key(path: Path) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(read_private(path), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise AuthError(f"{path} is not an Ed25519 private key")
    return key


def load_or_create_key(path: Path) -> Ed25519PrivateKey:
    """The key in ``path``, created (0600) on first use."""
    if path.exists() or path.is_symlink():
        return load_key(path)
    key = Ed25519PrivateKey.generate()
    save_key(path, key)
    return key
