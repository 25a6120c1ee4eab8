"""JWT bearers that must be refused cleanly: an algorithm not accepted or not fitting the key (HS256 signed
with the RSA public key, ES256 against an RSA key, ``none``), a malformed header, an unknown ``kid``: each a
401 ``invalid_api_key``, never a 500 and never accepted. A JWKS that cannot be had is a 503."""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.server
import json
import socket
import threading
import time
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from gateway.kernel.config.sections.auth import AuthSettings, JwtSettings
from gateway.kernel.errors import GatewayError
from gateway.services.identity.authenticator import Authenticator
from gateway.services.identity.jwt import JwksUnavailable, JwtVerifier
from gateway.services.identity.memory import MemoryKeyStore
from gateway.services.identity.secrets import KeyHasher

RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())
ALL_ALGORITHMS = ("RS256", "ES256", "HS256")


def claims(**extra: object) -> dict[str, object]:
    return {"sub": "u1", "tenant": "research", "exp": int(time.time()) + 60, **extra}


def rsa_jwk(declare_alg: bool) -> dict[str, Any]:
    jwk: dict[str, Any] = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(RSA_KEY.public_key()))
    jwk.update({"kid": "rsa1", "use": "sig", **({"alg": "RS256"} if declare_alg else {})})
    return jwk


def write_jwks(path: Path, *keys: dict[str, Any]) -> str:
    path.write_text(json.dumps({"keys": list(keys)}))
    return str(path)


def auth(jwks_file: str, algorithms: tuple[str, ...] = ALL_ALGORITHMS) -> Authenticator:
    s = AuthSettings(jwt=JwtSettings(jwks_file=jwks_file, algorithms=algorithms))
    return Authenticator(s, MemoryKeyStore(), KeyHasher(None))


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def unsigned(header: dict[str, Any], body: dict[str, object]) -> str:
    return f"{b64(json.dumps(header).encode())}.{b64(json.dumps(body).encode())}."


def hmac_signed(secret: bytes, header: dict[str, Any]) -> str:
    """An HS256 token made by hand (pyjwt itself refuses to use a public key as an HMAC secret)."""
    signing_input = unsigned({"typ": "JWT", "alg": "HS256", **header}, claims())[:-1]
    return f"{signing_input}.{b64(hmac.new(secret, signing_input.encode(), hashlib.sha256).digest())}"


def forged_tokens() -> dict[str, str]:
    """Tokens an attacker can make without the RSA private key."""
    public_pem = RSA_KEY.public_key().public_bytes(serialization.Encoding.PEM,
                                                  serialization.PublicFormat.SubjectPublicKeyInfo)
    return {
        # the classic confusion: HMAC "signed" with the RSA public key the JWKS publishes
        "hs256-with-the-public-key": hmac_signed(public_pem, {"kid": "rsa1"}),
        "hs256-no-kid": hmac_signed(public_pem, {}),
        "es256-against-the-rsa-key": jwt.encode(claims(), EC_KEY, algorithm="ES256", headers={"kid": "rsa1"}),
        "none": unsigned({"alg": "none", "kid": "rsa1"}, claims()),
        "no-alg": unsigned({"kid": "rsa1"}, claims()),
        "rs512-not-accepted": jwt.encode(claims(), RSA_KEY, algorithm="RS512", headers={"kid": "rsa1"}),
        "unknown-kid": jwt.encode(claims(), RSA_KEY, algorithm="RS256", headers={"kid": "rsa9"}),
        "kid-not-a-string": unsigned({"alg": "RS256", "kid": {"x": 1}}, claims()) + "c2ln",
        "alg-not-a-string": unsigned({"alg": 256, "kid": "rsa1"}, claims()) + "c2ln",
        "header-not-json": "eyJub3QganNvbg." + forged_body(),
        "header-broken-json": "eyJbXQ." + forged_body(),
        "header-bad-base64": "eyJhbGciOi." + forged_body(),
    }


def forged_body() -> str:
    return b64(json.dumps(claims()).encode()) + ".c2ln"


async def expect_401(a: Authenticator, token: str) -> GatewayError:
    with pytest.raises(GatewayError) as caught:
        await a.authenticate({"authorization": f"Bearer {token}"})
    err = caught.value
    assert (err.status, err.code, err.envelope()["error"]["type"]) == (401, "invalid_api_key", "invalid_request_error")
    return err


@pytest.mark.parametrize("declare_alg", [True, False], ids=["jwk-declares-alg", "jwk-without-alg"])
async def test_forged_and_malformed_tokens_are_401_never_500_never_accepted(
    tmp_path: Path, declare_alg: bool
) -> None:
    a = auth(write_jwks(tmp_path / "jwks.json", rsa_jwk(declare_alg)))
    good = jwt.encode(claims(), RSA_KEY, algorithm="RS256", headers={"kid": "rsa1"})
    assert (await a.authenticate({"authorization": f"Bearer {good}"})).tenant == "research"
    for name, token in forged_tokens().items():
        err = await expect_401(a, token)
        assert "Traceback" not in err.message, name


async def test_the_key_type_decides_when_the_jwk_names_no_algorithm(tmp_path: Path) -> None:
    ec_jwk: dict[str, Any] = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(EC_KEY.public_key()))
    ec_jwk.update({"kid": "ec1"})
    a = auth(write_jwks(tmp_path / "jwks.json", rsa_jwk(False), ec_jwk))
    for token in (jwt.encode(claims(), RSA_KEY, algorithm="RS256", headers={"kid": "rsa1"}),
                  jwt.encode(claims(), EC_KEY, algorithm="ES256", headers={"kid": "ec1"})):
        assert (await a.authenticate({"authorization": f"Bearer {token}"})).key_id == "jwt:u1"
    crossed = jwt.encode(claims(), EC_KEY, algorithm="ES256", headers={"kid": "rsa1"})
    await expect_401(a, crossed)
    no_kid = jwt.encode(claims(), EC_KEY, algorithm="ES256")  # only one key fits ES256: it is used
    assert (await a.authenticate({"authorization": f"Bearer {no_kid}"})).tenant == "research"


def test_none_is_never_an_accepted_algorithm(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="none"):
        JwtVerifier(JwtSettings(jwks_file=write_jwks(tmp_path / "jwks.json", rsa_jwk(True)),
                                algorithms=("RS256", "none")))


def serve_jwks(body: bytes) -> http.server.ThreadingHTTPServer:
    class Jwks(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            return None

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Jwks)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.mark.parametrize("document", [b"not json", b"[]", b'{"keys": "x"}', b'{"keys": [{"kty": "nope"}]}'])
async def test_a_jwks_that_cannot_be_read_is_a_503(tmp_path: Path, document: bytes) -> None:
    path = tmp_path / "jwks.json"
    path.write_bytes(document)
    token = jwt.encode(claims(), RSA_KEY, algorithm="RS256", headers={"kid": "rsa1"})
    with pytest.raises(JwksUnavailable) as caught:
        await auth(str(path)).authenticate({"authorization": f"Bearer {token}"})
    assert (caught.value.status, caught.value.code) == (503, "jwks_unavailable")


async def test_an_unreachable_jwks_url_is_a_503_and_a_fetched_set_outlives_an_outage() -> None:
    token = jwt.encode(claims(), RSA_KEY, algorithm="RS256", headers={"kid": "rsa1"})
    bearer = {"authorization": f"Bearer {token}"}
    down = Authenticator(AuthSettings(jwt=JwtSettings(jwks_url=f"http://127.0.0.1:{closed_port()}/jwks")),
                         MemoryKeyStore(), KeyHasher(None))
    with pytest.raises(JwksUnavailable):
        await down.authenticate(bearer)
    server = serve_jwks(json.dumps({"keys": [rsa_jwk(True)]}).encode())
    url = f"http://127.0.0.1:{server.server_address[1]}/jwks"
    a = Authenticator(AuthSettings(jwt=JwtSettings(jwks_url=url, jwks_cache_s=0.01)), MemoryKeyStore(),
                      KeyHasher(None))
    assert (await a.authenticate(bearer)).tenant == "research"
    server.shutdown()
    server.server_close()
    time.sleep(0.05)  # the set is stale now and its URL refuses connections
    assert (await a.authenticate(bearer)).tenant == "research"
