"""JWT bearers through a real gateway process: forged or malformed tokens are 401s in OpenAI's envelope
(never a 500), and a JWKS the gateway cannot fetch is a 503."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from tests.conftest import GatewayFactory

pytestmark = pytest.mark.integration

RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def config(jwt_settings: dict[str, object]) -> dict[str, object]:
    return {
        "backends": [{"name": "nowhere", "base_url": "http://127.0.0.1:9/v1"}],
        "models": [{"name": "m", "deployments": [{"backend": "nowhere"}]}],
        "chain": ["authn"],
        "auth": {"jwt": jwt_settings},
    }


def claims() -> dict[str, object]:
    return {"sub": "u1", "tenant": "research", "exp": int(time.time()) + 300}


def get_models(url: str, token: str) -> httpx.Response:
    return httpx.get(f"{url}/v1/models", headers={"authorization": f"Bearer {token}"}, timeout=10)


def jwks_file(tmp_path: Path) -> Path:
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(RSA_KEY.public_key()))
    jwk.update({"kid": "rsa1", "use": "sig"})
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": [jwk]}))
    return jwks


def test_forged_tokens_are_401_in_the_envelope(tmp_path: Path, start_gateway: GatewayFactory) -> None:
    jwks = jwks_file(tmp_path)
    gateway = start_gateway(config({"jwks_file": str(jwks), "algorithms": ["RS256", "ES256", "HS256"]}))
    good = jwt.encode(claims(), RSA_KEY, algorithm="RS256", headers={"kid": "rsa1"})
    assert get_models(gateway.url, good).status_code == 200
    ec_key = ec.generate_private_key(ec.SECP256R1())
    forged = {
        "es256-against-the-rsa-key": jwt.encode(claims(), ec_key, algorithm="ES256", headers={"kid": "rsa1"}),
        "hs256": jwt.encode(claims(), "a-shared-secret-of-at-least-32-bytes", algorithm="HS256"),
        "unknown-kid": jwt.encode(claims(), RSA_KEY, algorithm="RS256", headers={"kid": "rsa9"}),
        "malformed-header": "eyJub3QganNvbg.e30.c2ln",
    }
    for name, token in forged.items():
        resp = get_models(gateway.url, token)
        assert resp.status_code == 401, f"{name}: {resp.status_code} {resp.text}"
        assert resp.json()["error"]["code"] == "invalid_api_key", name
    assert "Traceback" not in gateway.logs()


def test_an_unreachable_jwks_is_a_503(start_gateway: GatewayFactory) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    gateway = start_gateway(config({"jwks_url": f"http://127.0.0.1:{port}/jwks.json"}))
    resp = get_models(gateway.url, jwt.encode(claims(), RSA_KEY, algorithm="RS256", headers={"kid": "rsa1"}))
    assert resp.status_code == 503 and resp.json()["error"]["code"] == "jwks_unavailable", resp.text


def test_a_jwt_is_a_credential_on_mcp(tmp_path: Path, start_gateway: GatewayFactory) -> None:
    """``/mcp`` takes the same bearers: a valid JWT lists the tools its subject may use; a forged one is a 401."""
    gateway = start_gateway({**config({"jwks_file": str(jwks_file(tmp_path))}), "chain": ["authn", "tools"]})
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    headers = {"content-type": "application/json", "accept": "application/json, text/event-stream"}
    good = jwt.encode(claims(), RSA_KEY, algorithm="RS256", headers={"kid": "rsa1"})
    listed = httpx.post(f"{gateway.url}/mcp", json=body, headers={**headers, "authorization": f"Bearer {good}"})
    assert listed.status_code == 200 and '"name":"python"' in listed.text, listed.text
    forged = jwt.encode(claims(), "a-shared-secret-of-at-least-32-bytes", algorithm="HS256")
    refused = httpx.post(f"{gateway.url}/mcp", json=body, headers={**headers, "authorization": f"Bearer {forged}"})
    assert refused.status_code == 401 and refused.headers["www-authenticate"].startswith("Bearer")
    assert refused.json()["error"]["data"]["code"] == "invalid_api_key"
