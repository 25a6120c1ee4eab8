"""A real OAuth 2.1 authorization server for tests: the ``mcp`` SDK's own handlers (authorize, token with
PKCE and client authentication, metadata) over an in-memory provider that signs in one user at once.

    python -m tests.support.oauth_server --redirect-uri URL [--client-secret S]

prints ``oauth server listening on http://127.0.0.1:PORT``. ``GET /issued`` lists the tokens it issued and
the resource indicators it was asked for (what a test checks the gateway stored).
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import socket
import time
from typing import Any

import uvicorn
from mcp.server.auth.provider import (
    AccessToken,
    AuthorizationCode,
    AuthorizationParams,
    RefreshToken,
    construct_redirect_uri,
)
from mcp.server.auth.routes import create_auth_routes
from mcp.shared.auth import OAuthClientInformationFull, OAuthToken
from pydantic import AnyHttpUrl, AnyUrl
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

CLIENT_ID = "llmops-gateway"


class Provider:
    """Every authorization is granted at once (no login page): a code for the redirect URI."""

    def __init__(self, redirect_uri: str, secret: str) -> None:
        self.client = OAuthClientInformationFull(
            client_id=CLIENT_ID, client_secret=secret, redirect_uris=[AnyUrl(redirect_uri)],
            token_endpoint_auth_method="client_secret_post", grant_types=["authorization_code", "refresh_token"],
            response_types=["code"], scope="repo read")
        self.codes: dict[str, AuthorizationCode] = {}
        self.refresh: dict[str, RefreshToken] = {}
        self.issued: dict[str, Any] = {"access": [], "refresh": [], "resources": []}

    async def get_client(self, client_id: str) -> OAuthClientInformationFull | None:
        return self.client if client_id == CLIENT_ID else None

    async def register_client(self, client_info: OAuthClientInformationFull) -> None:
        raise NotImplementedError

    async def authorize(self, client: OAuthClientInformationFull, params: AuthorizationParams) -> str:
        code = "code-" + secrets.token_hex(8)
        self.codes[code] = AuthorizationCode(
            code=code, scopes=params.scopes or [], expires_at=time.time() + 300, client_id=client.client_id or "",
            code_challenge=params.code_challenge, redirect_uri=params.redirect_uri,
            redirect_uri_provided_explicitly=params.redirect_uri_provided_explicitly, resource=params.resource)
        return construct_redirect_uri(str(params.redirect_uri), code=code, state=params.state)

    async def load_authorization_code(self, client: OAuthClientInformationFull, code: str) -> AuthorizationCode | None:
        return self.codes.get(code)

    async def exchange_authorization_code(self, client: OAuthClientInformationFull,
                                          code: AuthorizationCode) -> OAuthToken:
        del self.codes[code.code]
        self.issued["resources"].append(code.resource)
        return self._issue(code.scopes)

    async def load_refresh_token(self, client: OAuthClientInformationFull, refresh_token: str) -> RefreshToken | None:
        return self.refresh.get(refresh_token)

    async def exchange_refresh_token(self, client: OAuthClientInformationFull, refresh_token: RefreshToken,
                                     scopes: list[str]) -> OAuthToken:
        del self.refresh[refresh_token.token]  # rotated: each refresh token works once
        return self._issue(scopes or refresh_token.scopes)

    async def load_access_token(self, token: str) -> AccessToken | None:
        return None

    async def revoke_token(self, token: AccessToken | RefreshToken) -> None:
        return None

    def _issue(self, scopes: list[str]) -> OAuthToken:
        access, refresh = "at-" + secrets.token_hex(12), "rt-" + secrets.token_hex(12)
        self.refresh[refresh] = RefreshToken(token=refresh, client_id=CLIENT_ID, scopes=scopes)
        self.issued["access"].append(access)
        self.issued["refresh"].append(refresh)
        return OAuthToken(access_token=access, token_type="Bearer", expires_in=3600, refresh_token=refresh,
                          scope=" ".join(scopes) or None)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--redirect-uri", required=True)
    parser.add_argument("--client-secret", default="gateway-secret")
    args = parser.parse_args()
    provider = Provider(args.redirect_uri, args.client_secret)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]

    async def issued(request: Request) -> JSONResponse:
        return JSONResponse(provider.issued)

    routes = create_auth_routes(provider, AnyHttpUrl(f"http://127.0.0.1:{port}"))  # type: ignore[arg-type]
    app = Starlette(routes=[*routes, Route("/issued", issued)])
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    print(f"oauth server listening on http://127.0.0.1:{port}", flush=True)
    asyncio.run(server.serve(sockets=[sock]))


if __name__ == "__main__":
    main()
