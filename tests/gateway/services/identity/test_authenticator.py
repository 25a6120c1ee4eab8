"""Authenticator: static keys, virtual keys (revoked, expired, rotated), JWT bearers."""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from gateway.kernel.config.sections.auth import AuthSettings, JwtSettings, StaticKey
from gateway.kernel.context import Principal
from gateway.kernel.errors import AuthenticationFailed
from gateway.kernel.grants import may_use_model, usable_models
from gateway.services.identity.authenticator import Authenticator, bearer
from gateway.services.identity.memory import MemoryKeyStore
from gateway.services.identity.secrets import KeyHasher, new_secret
from gateway.services.identity.types import KeyRecord


def auth(**settings: object) -> Authenticator:
    s = AuthSettings.model_validate(settings)
    return Authenticator(s, MemoryKeyStore(), KeyHasher(b"pepper"))


def headers(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def test_bearer_parsing() -> None:
    assert bearer({"authorization": "Bearer abc"}) == "abc"
    assert bearer({"authorization": "Basic abc"}) is None
    assert bearer({"x-api-key": "k"}) == "k"
    assert bearer({}) is None


async def test_static_key_and_missing_or_unknown() -> None:
    a = auth(static_keys=[StaticKey(key="sk-static", key_id="s1", tenant="t", roles=("admin",), models=("m*",))])
    who = await a.authenticate(headers("sk-static"))
    assert (who.tenant, who.key_id, who.roles, who.models) == ("t", "s1", ("admin",), ("m*",))
    with pytest.raises(AuthenticationFailed, match="didn't provide"):
        await a.authenticate({})
    with pytest.raises(AuthenticationFailed, match="Incorrect API key") as info:
        await a.authenticate(headers("sk-wrong-but-long-enough"))
    assert "wrong-but" not in info.value.message and info.value.status == 401


async def test_virtual_key_lifecycle_revoke_expire_rotate() -> None:
    a = auth(cache_ttl_s=60)
    secret = new_secret("sk-test-")
    record = KeyRecord("k1", a.hasher.hash(secret), "team", roles=("dev",), rpm=5)
    await a.store.create(record)
    assert (await a.authenticate(headers(secret))).rpm == 5
    await a.store.revoke("k1", time.time())
    a.forget("k1")
    with pytest.raises(AuthenticationFailed):
        await a.authenticate(headers(secret))
    expired = new_secret("sk-test-")
    await a.store.create(dataclasses.replace(record, key_id="k2", key_hash=a.hasher.hash(expired),
                                             expires_at=time.time() - 1))
    with pytest.raises(AuthenticationFailed):
        await a.authenticate(headers(expired))
    fresh, newer = new_secret("sk-test-"), new_secret("sk-test-")
    await a.store.create(dataclasses.replace(record, key_id="k3", key_hash=a.hasher.hash(fresh)))
    await a.authenticate(headers(fresh))
    await a.store.rotate("k3", a.hasher.hash(newer))
    a.forget("k3")
    assert (await a.authenticate(headers(newer))).key_id == "k3"
    with pytest.raises(AuthenticationFailed):
        await a.authenticate(headers(fresh))


def test_hashes_never_hold_the_secret() -> None:
    h = KeyHasher(b"p").hash("sk-abc")
    assert "sk-abc" not in h and len(h) == 64 and h != KeyHasher(None).hash("sk-abc")


def test_model_grants() -> None:
    who = Principal(tenant="t", key_id="k", models=("sim-*", "gpt-4o"))
    assert may_use_model(who, "sim-chat") and may_use_model(who, "gpt-4o")
    assert not may_use_model(who, "gpt-4o-mini")
    assert may_use_model(None, "anything")
    assert usable_models(who, ["sim-a", "x"]) == ["sim-a"]


@pytest.fixture(scope="module")
def signing(tmp_path_factory: pytest.TempPathFactory) -> tuple[object, Path]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    jwk.update({"kid": "k1", "use": "sig", "alg": "RS256"})
    path = tmp_path_factory.mktemp("jwks") / "jwks.json"
    path.write_text(json.dumps({"keys": [jwk]}))
    return key, path


async def test_jwt_maps_claims_to_tenant_and_roles(signing: tuple[object, Path]) -> None:
    key, path = signing
    a = auth(jwt=JwtSettings(jwks_file=str(path), issuer="https://idp", audience="llmops"))
    claims = {"sub": "u1", "tenant": "research", "roles": "analyst admin", "iss": "https://idp",
              "aud": "llmops", "exp": int(time.time()) + 60, "models": ["sim-*"]}
    token = jwt.encode(claims, key, algorithm="RS256", headers={"kid": "k1"})  # type: ignore[arg-type]
    who = await a.authenticate(headers(token))
    assert (who.tenant, who.key_id, who.roles, who.models) == ("research", "jwt:u1", ("analyst", "admin"), ("sim-*",))
    expired = jwt.encode({**claims, "exp": int(time.time()) - 120}, key,  # type: ignore[arg-type]
                         algorithm="RS256", headers={"kid": "k1"})
    with pytest.raises(AuthenticationFailed, match="expired"):
        await a.authenticate(headers(expired))
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = jwt.encode(claims, other, algorithm="RS256", headers={"kid": "k1"})
    with pytest.raises(AuthenticationFailed):
        await a.authenticate(headers(forged))


async def test_jwks_from_a_url_is_fetched_once_and_cached(signing: tuple[object, Path]) -> None:
    import http.server
    import threading

    key, path = signing
    hits: list[str] = []
    body = path.read_bytes()

    class JwksHandler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hits.append(self.path)
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            return None

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), JwksHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/.well-known/jwks.json"
        a = auth(jwt=JwtSettings(jwks_url=url, issuer="https://idp", audience="llmops", jwks_cache_s=300))
        claims = {"sub": "u2", "tenant": "ops", "iss": "https://idp", "aud": "llmops", "exp": int(time.time()) + 60}
        token = jwt.encode(claims, key, algorithm="RS256", headers={"kid": "k1"})  # type: ignore[arg-type]
        for _ in range(3):
            assert (await a.authenticate(headers(token))).tenant == "ops"
        assert hits == ["/.well-known/jwks.json"]
    finally:
        server.shutdown()
