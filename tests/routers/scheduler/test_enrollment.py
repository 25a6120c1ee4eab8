"""The node book: single-use expiring tokens, no id takeover, revocation, kept in 0600 files and shared by replicas."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from executors.signing import fingerprint, public_text
from gateway.kernel.errors import InvalidRequest, NotFound
from routers.scheduler.enrollment import NodeBook
from routers.scheduler.errors import EnrollmentRefused, NodeIdTaken

CERT = "ef" * 32


def key() -> str:
    return public_text(Ed25519PrivateKey.generate())


def test_a_token_is_single_use_bound_and_short_lived() -> None:
    now = [1000.0]
    book = NodeBook(Ed25519PrivateKey.generate(), clock=lambda: now[0])
    token, expires = book.issue({"tier": "secure"}, "n1", 60)
    assert expires == 1060 and token.startswith("llmj1.") and token.endswith(fingerprint(book.public_key))
    with pytest.raises(EnrollmentRefused, match="another node id"):
        book.enroll(token, "n2", key(), CERT)
    node = book.enroll(token, "n1", key(), CERT)
    assert dict(node.labels) == {"tier": "secure"} and node.trusted
    with pytest.raises(EnrollmentRefused, match="already used"):
        book.enroll(token, "n1", key(), CERT)
    late, _ = book.issue({}, None, 60)
    now[0] += 61
    with pytest.raises(EnrollmentRefused, match="expired"):
        book.enroll(late, "n3", key(), CERT)
    with pytest.raises(InvalidRequest):
        book.enroll(book.issue({}, None, 60)[0], "n4", "bm90IGEga2V5", CERT)


def test_an_enrolled_id_is_never_taken_over_and_revocation_sticks() -> None:
    book = NodeBook(Ed25519PrivateKey.generate())
    original = key()
    book.enroll(book.issue({}, None)[0], "n1", original, CERT)
    with pytest.raises(NodeIdTaken):
        book.enroll(book.issue({}, None)[0], "n1", key(), CERT)
    book.revoke("n1")
    assert book.trusted("n1") is None
    with pytest.raises(NodeIdTaken):  # not even after revocation
        book.enroll(book.issue({}, None)[0], "n1", key(), CERT)
    enrolled = book.get("n1")
    assert enrolled is not None and enrolled.public_key == original
    with pytest.raises(NotFound):
        book.revoke("nobody")


def test_the_book_persists_in_0600_files_and_is_shared_by_replicas(tmp_path: Path) -> None:
    state = tmp_path / "cp"
    first, second = NodeBook.open(str(state)), NodeBook.open(str(state))
    assert first.public_key == second.public_key  # one control-plane key
    for name in ("control-plane.key",):
        assert stat.S_IMODE((state / name).stat().st_mode) == 0o600
    token, _ = first.issue({"tier": "secure"}, "n1")
    second.enroll(token, "n1", key(), CERT)  # a token issued on one replica works on another
    assert stat.S_IMODE((state / "nodes.json").stat().st_mode) == 0o600
    assert first.trusted("n1") is not None
    with pytest.raises(EnrollmentRefused):
        first.enroll(token, "n1", key(), CERT)
    first.revoke("n1")
    assert second.trusted("n1") is None  # revocation reaches the other replica at once
    restarted = NodeBook.open(str(state))
    node = restarted.get("n1")
    assert node is not None and node.revoked_at is not None and dict(node.labels) == {"tier": "secure"}
