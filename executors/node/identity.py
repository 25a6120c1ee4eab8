"""The node's own identity, kept in a 0700 state directory, and its one-time enrollment.

Files (every key 0600, created with ``O_EXCL|O_NOFOLLOW``)::

    node.key        Ed25519 private key: signs heartbeats and job results
    tls.key         ECDSA P-256 private key of the node's TLS server
    tls.crt         its self-signed certificate (the control plane pins its SHA-256 at enrollment)
    identity.json   node id, labels, and the control plane's public key (pinned at enrollment)

Enrollment: ``POST {control_plane}/internal/nodes/enroll`` with a join token, the node id, the public
key and the certificate's SHA-256, signed with the new key (proof of possession). The token carries
the fingerprint of the control plane's key, so the key in the answer is checked, not trusted.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.x509.oid import NameOID

from executors.errors import AuthError, NodeError
from executors.signing import (
    CONTROL_PLANE,
    fingerprint,
    load_key,
    load_or_create_key,
    load_public,
    public_text,
    sign,
    write_private,
)

ENROLL_PATH = "/internal/nodes/enroll"
TOKEN_PREFIX = "llmj1"


@dataclass(frozen=True, slots=True)
class NodeIdentity:
    node_id: str
    key: Ed25519PrivateKey = field(repr=False)
    control_plane: Ed25519PublicKey
    cert_file: Path
    tls_key_file: Path
    labels: dict[str, str] = field(default_factory=dict)


def state_dir(path: Path) -> Path:
    """Create ``path`` 0700 if needed; refuse one that others can write or that is not ours."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = path.lstat()
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
        raise AuthError(f"state directory {path} must be a directory owned by this user with mode 0700")
    return path


def ensure_tls(state: Path, node_id: str) -> str:
    """The node's TLS key and self-signed certificate (created once); returns the cert's SHA-256 hex."""
    cert_file = state / "tls.crt"
    if not cert_file.exists():
        key = ec.generate_private_key(ec.SECP256R1())
        write_private(state / "tls.key", key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
        write_private(cert_file, _self_signed(key, node_id).public_bytes(serialization.Encoding.PEM))
    cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


def _self_signed(key: ec.EllipticCurvePrivateKey, node_id: str) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, node_id[:64])])
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .sign(key, hashes.SHA256())
    )


def load_identity(state: Path) -> NodeIdentity | None:
    """The enrolled identity in ``state``, or None if this node has not enrolled yet."""
    saved = state / "identity.json"
    if not saved.exists():
        return None
    data = json.loads(saved.read_text())
    return NodeIdentity(str(data["node_id"]), load_key(state / "node.key"), load_public(data["control_plane_key"]),
                        state / "tls.crt", state / "tls.key", dict(data.get("labels", {})))


def pinned_fingerprint(token: str) -> str:
    """The control-plane key fingerprint a join token carries (``llmj1.SECRET.FINGERPRINT``)."""
    parts = token.strip().split(".")
    if len(parts) != 3 or parts[0] != TOKEN_PREFIX or not parts[2]:
        raise AuthError("not a join token (expected llmj1.SECRET.FINGERPRINT)")
    return parts[2]


async def enroll(control_plane: str, token: str, node_id: str, state: Path) -> NodeIdentity:
    """Enroll once: make the keys, present them with the token, pin the control plane's key."""
    pinned = pinned_fingerprint(token)
    key = load_or_create_key(state / "node.key")
    body = json.dumps({"token": token.strip(), "node_id": node_id, "public_key": public_text(key),
                       "cert_sha256": ensure_tls(state, node_id)}).encode()
    headers = {"content-type": "application/json",
               **sign(key, "POST", ENROLL_PATH, body, signer=node_id, audience=CONTROL_PLANE)}
    answer = await _post(control_plane.rstrip("/") + ENROLL_PATH, body, headers)
    cp_key = str(answer.get("control_plane_key", ""))
    if fingerprint(cp_key) != pinned:
        raise AuthError("the control plane's key does not match the join token")
    labels = {str(k): str(v) for k, v in dict(answer.get("labels", {})).items()}
    saved = {"node_id": node_id, "control_plane_key": cp_key, "labels": labels}
    write_private(state / "identity.json", json.dumps(saved).encode())
    return NodeIdentity(node_id, key, load_public(cp_key), state / "tls.crt", state / "tls.key", labels)


async def _post(url: str, body: bytes, headers: dict[str, str]) -> dict[str, Any]:
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
            async with session.post(url, data=body, headers=headers) as response:
                text = await response.text()
                status = response.status
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise NodeError(f"control plane {url} unreachable: {exc}") from exc
    if status >= 300:
        raise AuthError(f"enrollment refused ({status}): {text[:300]}")
    answer: dict[str, Any] = json.loads(text)
    return answer
