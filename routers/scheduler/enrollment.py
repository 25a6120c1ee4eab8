"""``NodeBook``: who may act as a node. Join tokens, enrolled nodes (id → public key, TLS pin, labels), revocation.

An admin issues a join token (short-lived, single use, carrying the labels it grants). A node
enrolls once with it, presenting its own public key and its TLS certificate's SHA-256; an id that
is already enrolled is never taken over (409). The labels a node is trusted with are the token's:
a node cannot label itself into a secret. Revocation is immediate: a revoked node's heartbeats and
results are refused and it is sent nothing.

The control plane's own Ed25519 key (signs every job, pinned by nodes at enrollment) and the book
live in ``state_dir`` (``control-plane.key`` and ``nodes.json``, both 0600) when one is configured;
otherwise in process, and nodes must enroll again after a restart. Replicas may share one
``state_dir`` (a shared volume with ``flock``): every change is made under ``nodes.lock`` on the
latest file, and reads pick up another replica's changes (enrollment, revocation) at once.
"""

from __future__ import annotations

import fcntl
import hashlib
import hmac
import json
import os
import re
import secrets
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from executors.errors import AuthError
from executors.node.client import NodePin
from executors.signing import fingerprint, load_or_create_key, load_public, public_text, read_private
from gateway.kernel.errors import InvalidRequest, NotFound
from routers.scheduler.errors import EnrollmentRefused, NodeIdTaken

TOKEN_PREFIX = "llmj1"
_NODE_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True, slots=True)
class EnrolledNode:
    node_id: str
    public_key: str  # raw Ed25519, base64
    cert_sha256: str  # hex SHA-256 of the node's TLS certificate (DER)
    labels: Mapping[str, str] = field(default_factory=dict)
    enrolled_at: float = 0.0
    revoked_at: float | None = None

    @property
    def trusted(self) -> bool:
        return self.revoked_at is None

    def pin(self) -> NodePin:
        return NodePin(self.node_id, load_public(self.public_key), bytes.fromhex(self.cert_sha256))

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "labels": dict(self.labels)}


@dataclass(frozen=True, slots=True)
class Invitation:
    digest: str  # SHA-256 of the token's secret part; the token itself is never stored
    expires_at: float
    labels: Mapping[str, str] = field(default_factory=dict)
    node_id: str | None = None


class NodeBook:
    def __init__(self, key: Ed25519PrivateKey, *, path: Path | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.key = key
        self.public_key = public_text(key)
        self._path = path
        self._clock = clock
        self._nodes: dict[str, EnrolledNode] = {}
        self._invitations: dict[str, Invitation] = {}
        self._version: tuple[int, int, int] | None = None
        self._refresh()

    @classmethod
    def open(cls, state_dir: str | None) -> NodeBook:
        """The book in ``state_dir`` (created 0700, key created 0600), or an in-process one."""
        if state_dir is None:
            return cls(Ed25519PrivateKey.generate())
        root = Path(state_dir)
        root.mkdir(mode=0o700, parents=True, exist_ok=True)
        return cls(load_or_create_key(root / "control-plane.key"), path=root / "nodes.json")

    def issue(self, labels: Mapping[str, str], node_id: str | None = None, ttl_s: float = 600.0) -> tuple[str, float]:
        """A new join token and its expiry (unix seconds)."""
        if node_id is not None and not _NODE_ID.match(node_id):
            raise InvalidRequest(f"invalid node id {node_id!r}", param="node_id")
        now = self._clock()
        secret = secrets.token_hex(32)
        expires = now + ttl_s
        with self._writing():
            self._invitations = {d: i for d, i in self._invitations.items() if i.expires_at >= now}
            self._invitations[_digest(secret)] = Invitation(_digest(secret), expires, dict(labels), node_id)
        return f"{TOKEN_PREFIX}.{secret}.{fingerprint(self.public_key)}", expires

    def enroll(self, token: str, node_id: str, public_key: str, cert_sha256: str) -> EnrolledNode:
        """Record a node under a valid, unused token. ``EnrollmentRefused`` (401), ``NodeIdTaken`` (409)."""
        if not _NODE_ID.match(node_id) or not _SHA256.match(cert_sha256):
            raise InvalidRequest("enrollment needs a valid node_id and cert_sha256")
        try:
            load_public(public_key)
        except AuthError as exc:
            raise InvalidRequest(str(exc), param="public_key") from None
        with self._writing():
            invitation = self._invitation(token)
            if invitation.node_id is not None and invitation.node_id != node_id:
                raise EnrollmentRefused("This join token is for another node id.")
            if node_id in self._nodes:
                raise NodeIdTaken(f"Node id {node_id!r} is enrolled already; it cannot be enrolled again.")
            del self._invitations[invitation.digest]
            node = EnrolledNode(node_id, public_key, cert_sha256, dict(invitation.labels), self._clock())
            self._nodes[node_id] = node
        return node

    def _invitation(self, token: str) -> Invitation:
        parts = token.split(".")
        found = self._invitations.get(_digest(parts[1])) if len(parts) == 3 and parts[0] == TOKEN_PREFIX else None
        if found is None or not hmac.compare_digest(found.digest, _digest(parts[1])):
            raise EnrollmentRefused("Unknown or already used join token.")
        if found.expires_at < self._clock():
            del self._invitations[found.digest]
            raise EnrollmentRefused("The join token has expired.")
        return found

    def get(self, node_id: str) -> EnrolledNode | None:
        self._refresh()
        return self._nodes.get(node_id)

    def trusted(self, node_id: str) -> EnrolledNode | None:
        """The node if it is enrolled and not revoked."""
        node = self.get(node_id)
        return node if node is not None and node.trusted else None

    def revoke(self, node_id: str) -> EnrolledNode:
        with self._writing():
            node = self._nodes.get(node_id)
            if node is None:
                raise NotFound(f"No enrolled node {node_id!r}.", code="node_not_found")
            if node.trusted:
                node = self._nodes[node_id] = replace(node, revoked_at=self._clock())
        return node

    def nodes(self) -> list[EnrolledNode]:
        self._refresh()
        return sorted(self._nodes.values(), key=lambda n: n.node_id)

    @contextmanager
    def _writing(self) -> Iterator[None]:
        """Change the book under the lock, starting from the latest file; saved only if the change succeeds."""
        if self._path is None:
            yield
            return
        fd = os.open(self._path.with_suffix(".lock"), os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            self._refresh(force=True)
            yield
            self._save()
        finally:
            os.close(fd)  # releases the lock

    def _refresh(self, *, force: bool = False) -> None:
        """Re-read the file when another replica (or process) has replaced it."""
        if self._path is None:
            return
        try:
            info = os.stat(self._path)
        except FileNotFoundError:
            return
        version = (info.st_ino, info.st_mtime_ns, info.st_size)
        if force or version != self._version:
            self._load(self._path)
            self._version = version

    def _save(self) -> None:
        assert self._path is not None
        data = {"nodes": [n.to_json() for n in self._nodes.values()],
                "invitations": [{**asdict(i), "labels": dict(i.labels)} for i in self._invitations.values()]}
        tmp = self._path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump(data, out)
        os.replace(tmp, self._path)
        info = os.stat(self._path)
        self._version = (info.st_ino, info.st_mtime_ns, info.st_size)

    def _load(self, path: Path) -> None:
        data = json.loads(read_private(path))
        self._nodes = {n["node_id"]: EnrolledNode(**n) for n in data.get("nodes", [])}
        self._invitations = {i["digest"]: Invitation(**i) for i in data.get("invitations", [])}


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()
