"""Per-subject upstream tokens: AES-256-GCM bound to (subject, server), in real PostgreSQL."""

from __future__ import annotations

import os
import secrets

import pytest
from pydantic import ValidationError

from gateway.kernel.config.sections.mcp import McpSettings
from gateway.kernel.mcp import subject_id
from gateway.services.mcp.credentials import PostgresCredentials, Sealer, Unreadable
from gateway.services.mcp.pool import McpPool

KEY = os.urandom(32)


def test_a_sealed_token_opens_only_for_its_subject_and_server() -> None:
    sealer = Sealer(KEY)
    sealed = sealer.seal("t/alice", "github", "ghp_secret")
    assert b"ghp_secret" not in sealed.ciphertext and len(sealed.nonce) == 12
    assert sealer.open("t/alice", "github", sealed.nonce, sealed.ciphertext) == "ghp_secret"
    for subject, server in (("t/bob", "github"), ("t/alice", "gitlab"), ("t/alice/github", ""),
                            ("t", "alice/github")):
        with pytest.raises(Unreadable):
            sealer.open(subject, server, sealed.nonce, sealed.ciphertext)


def test_a_tampered_token_or_another_key_does_not_open() -> None:
    sealed = Sealer(KEY).seal("t/a", "s", "token")
    flipped = bytes([sealed.ciphertext[0] ^ 1]) + sealed.ciphertext[1:]
    with pytest.raises(Unreadable):
        Sealer(KEY).open("t/a", "s", sealed.nonce, flipped)
    with pytest.raises(Unreadable):
        Sealer(os.urandom(32)).open("t/a", "s", sealed.nonce, sealed.ciphertext)
    with pytest.raises(ValueError, match="32 bytes"):
        Sealer(b"short")


def test_each_write_has_its_own_nonce_and_the_fingerprint_is_keyed() -> None:
    sealer = Sealer(KEY)
    one, two = sealer.seal("t/a", "s", "same"), sealer.seal("t/a", "s", "same")
    assert one.nonce != two.nonce and one.ciphertext != two.ciphertext
    assert one.fingerprint == two.fingerprint and one.fingerprint.startswith("hmac-sha256:")
    assert Sealer(os.urandom(32)).fingerprint("same") != one.fingerprint
    assert one.key_id == sealer.key_id != Sealer(os.urandom(32)).key_id


@pytest.mark.parametrize(("key", "said"), [("not base64!", "not base64"), ("c2hvcnQ=", "got 5"),
                                           ("", "got 0")])
def test_a_bad_key_is_one_line_naming_the_setting_and_never_the_value(key: str, said: str) -> None:
    with pytest.raises(ValidationError) as caught:
        McpSettings(credentials_key=key)
    (error,) = caught.value.errors()
    assert error["msg"].startswith("Value error, mcp.credentials_key: ") and said in error["msg"]
    assert key not in error["msg"] or not key


def test_per_subject_servers_need_a_key() -> None:
    with pytest.raises(ValidationError, match="mcp.credentials_key"):
        McpSettings(servers=({"name": "gh", "url": "https://x.example/mcp", "credential": "per_subject"},))


def store(pool: McpPool, key: bytes = KEY) -> PostgresCredentials:
    return PostgresCredentials(pool, Sealer(key))


async def test_tokens_are_kept_per_subject_and_server(mcp_pool: McpPool) -> None:
    creds, server = store(mcp_pool), f"srv-{secrets.token_hex(3)}"
    alice, bob = subject_id("t", "key-a", {}), subject_id("t", "key-b", {})
    assert await creds.token(alice, server) is None
    shown = await creds.store(alice, server, "alice-token")
    assert shown.server == server and shown.fingerprint == Sealer(KEY).fingerprint("alice-token")
    assert await creds.token(alice, server) == "alice-token"
    assert await creds.token(bob, server) is None
    assert await creds.token(alice, server + "x") is None
    await creds.put(bob, server, "bob-token")
    assert (await creds.token(alice, server), await creds.token(bob, server)) == ("alice-token", "bob-token")
    await creds.put(alice, server, "alice-rotated")
    assert await creds.token(alice, server) == "alice-rotated"
    assert [c.server for c in await creds.stored(alice)] == [server]
    assert "alice-rotated" not in repr(await creds.stored(alice))
    assert await creds.delete(alice, server) is True and await creds.delete(alice, server) is False
    assert await creds.token(alice, server) is None and await creds.token(bob, server) == "bob-token"


async def test_two_keys_of_one_jwt_subject_share_tokens_no_two_tenants_do(mcp_pool: McpPool) -> None:
    creds, server = store(mcp_pool), f"srv-{secrets.token_hex(3)}"
    await creds.put(subject_id("t", "jwt:1", {"sub": "u1"}), server, "u1-token")
    assert await creds.token(subject_id("t", "jwt:2", {"sub": "u1"}), server) == "u1-token"
    assert await creds.token(subject_id("other", "jwt:1", {"sub": "u1"}), server) is None


async def test_a_row_copied_to_another_subject_does_not_open(mcp_pool: McpPool) -> None:
    creds, server = store(mcp_pool), f"srv-{secrets.token_hex(3)}"
    await creds.put("t/victim", server, "victim-token")
    await creds.put("t/thief", server, "thief-token")
    async with mcp_pool.connection() as conn:
        await conn.execute(
            "UPDATE llmops_mcp_credentials AS thief SET nonce = v.nonce, ciphertext = v.ciphertext "
            "FROM llmops_mcp_credentials AS v WHERE thief.subject = 't/thief' AND v.subject = 't/victim' "
            "AND thief.server = %s AND v.server = %s", (server, server))
    assert await creds.token("t/thief", server) is None
    assert await creds.token("t/victim", server) == "victim-token"


async def test_the_database_holds_no_token_in_clear_and_another_key_reads_none(mcp_pool: McpPool) -> None:
    creds, server = store(mcp_pool), f"srv-{secrets.token_hex(3)}"
    await creds.put("t/a", server, "plain-token-value")
    async with mcp_pool.connection() as conn:
        cur = await conn.execute("SELECT * FROM llmops_mcp_credentials WHERE server = %s", (server,))
        row = await cur.fetchone()
    assert row is not None and b"plain-token-value" not in repr(row).encode()
    assert await store(mcp_pool, os.urandom(32)).token("t/a", server) is None


async def test_an_empty_or_huge_token_is_refused(mcp_pool: McpPool) -> None:
    for token in ("", "x" * 20_000):
        with pytest.raises(ValueError, match="bytes"):
            await store(mcp_pool).put("t/a", "s", token)
