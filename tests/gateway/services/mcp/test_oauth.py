"""OAuth pieces that need no server: PKCE, reading a token endpoint's answer, the oauth block's checks
(the whole sign-in runs against a real authorization server in tests/integration/test_mcp_credentials.py)."""

from __future__ import annotations

import base64
import hashlib
import time

import pytest
from pydantic import ValidationError

from gateway.kernel.config.sections.mcp import McpServer
from gateway.kernel.errors import UpstreamError
from gateway.services.mcp.oauth import _grant, challenge

OAUTH = {"authorize_url": "https://as.example/authorize", "token_url": "https://as.example/token",
         "client_id": "gw", "redirect_uri": "https://gw.example/v1/mcp/oauth/callback"}


def test_the_pkce_challenge_is_s256_base64url_without_padding() -> None:
    digest = hashlib.sha256(b"verifier-0123456789-0123456789-0123456789-xyz").digest()
    assert challenge("verifier-0123456789-0123456789-0123456789-xyz") == \
        base64.urlsafe_b64encode(digest).decode().rstrip("=")
    assert len(challenge("v" * 43)) == 43 and "=" not in challenge("v" * 43)


def test_a_grant_is_read_with_its_refresh_token_and_expiry() -> None:
    grant = _grant(200, {"access_token": "at", "refresh_token": "rt", "expires_in": 60, "token_type": "Bearer"})
    assert (grant.access_token, grant.refresh_token) == ("at", "rt")
    assert grant.expires_at is not None and time.time() < grant.expires_at <= time.time() + 60
    assert _grant(200, {"access_token": "at"}).expires_at is None


@pytest.mark.parametrize(("status", "answer", "said"), [
    (400, {"error": "invalid_grant", "error_description": "the code was forged by secret-xyz"}, "invalid_grant"),
    (200, {"token_type": "Bearer"}, "status 200"),
    (500, "<html>", "status 500"),
    (400, {"error": "x" * 100}, "status 400"),
])
def test_a_refusal_names_the_error_code_only(status: int, answer: object, said: str) -> None:
    with pytest.raises(UpstreamError) as refused:
        _grant(status, answer)
    assert said in refused.value.message and "secret-xyz" not in refused.value.message
    assert refused.value.code == "oauth_token_failed"


def test_oauth_needs_a_per_subject_server() -> None:
    with pytest.raises(ValidationError, match="not per_subject"):
        McpServer(name="gh", url="https://mcp.example/mcp", oauth=OAUTH)
    server = McpServer(name="gh", url="https://mcp.example/mcp", credential="per_subject", oauth=OAUTH)
    assert server.oauth is not None and server.oauth.state_ttl_s == 600
