"""OAuth 2.1 sign-in per subject for upstream MCP servers with an ``oauth`` block (authorization code + PKCE).

``start`` records a sign-in (the state's hash, whose it is, the PKCE verifier sealed) in PostgreSQL and gives
the authorization URL; the caller opens it in a browser; the authorization server redirects to the gateway's
callback, where ``finish`` takes the state (once: it is deleted as it is read, and expires after
``state_ttl_s``), exchanges the code with the verifier, and stores the access token, its refresh token and
its expiry as the subject's credential (``credentials.py``). Any replica can finish any sign-in. ``refresh``
trades a refresh token for a new grant when the store finds an access token expired.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

import aiohttp

from gateway.kernel.config.sections.mcp import McpOAuth
from gateway.kernel.errors import InvalidRequest, NotFound, UpstreamError
from gateway.services.mcp.credentials import Grant, PostgresCredentials, StoredCredential, Unreadable
from gateway.services.mcp.pool import McpPool

_TIMEOUT = aiohttp.ClientTimeout(total=15)


class OAuthServer:
    """One server's OAuth settings, with the resource indicator resolved (the server's URL by default)."""

    def __init__(self, settings: McpOAuth, url: str | None) -> None:
        self.settings = settings
        self.resource = settings.resource or url


def challenge(verifier: str) -> str:
    """PKCE S256: base64url(sha256(verifier)) without padding (RFC 7636)."""
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


def _state_hash(state: str) -> str:
    return hashlib.sha256(state.encode()).hexdigest()


class OAuthFlows:
    def __init__(self, pool: McpPool, credentials: PostgresCredentials, servers: Mapping[str, OAuthServer]) -> None:
        self._pool = pool
        self._credentials = credentials
        self._servers = dict(servers)
        self._session: aiohttp.ClientSession | None = None
        credentials.refresh = self.refresh
        credentials.oauth = self

    def knows(self, server: str) -> bool:
        return server in self._servers

    async def start(self, subject: str, server: str) -> tuple[str, int]:
        """The authorization URL for ``subject`` to open, and when the sign-in expires."""
        oauth = self._server(server)
        state, verifier = secrets.token_urlsafe(32), secrets.token_urlsafe(64)
        expires = int(time.time() + oauth.settings.state_ttl_s)
        sealed = self._credentials.sealer.seal(subject, server, verifier, "pkce:" + _state_hash(state))
        async with self._pool.connection() as conn:
            await conn.execute("DELETE FROM llmops_mcp_oauth_states WHERE expires_at < %s", (int(time.time()),))
            await conn.execute("INSERT INTO llmops_mcp_oauth_states (state_hash, subject, server, nonce, verifier, "
                               "expires_at) VALUES (%s, %s, %s, %s, %s, %s)",
                               (_state_hash(state), subject, server, sealed.nonce, sealed.ciphertext, expires))
        s = oauth.settings
        query = {"response_type": "code", "client_id": s.client_id, "redirect_uri": s.redirect_uri, "state": state,
                 "code_challenge": challenge(verifier), "code_challenge_method": "S256"}
        if s.scopes:
            query["scope"] = " ".join(s.scopes)
        if oauth.resource:
            query["resource"] = oauth.resource
        joiner = "&" if "?" in s.authorize_url else "?"
        return f"{s.authorize_url}{joiner}{urlencode(query)}", expires

    async def finish(self, state: str, code: str) -> StoredCredential:
        """Take the sign-in ``state`` names (once), exchange ``code``, store the grant as its subject's token."""
        async with self._pool.connection() as conn:
            cur = await conn.execute("DELETE FROM llmops_mcp_oauth_states WHERE state_hash = %s "
                                     "RETURNING subject, server, nonce, verifier, expires_at", (_state_hash(state),))
            row = await cur.fetchone()
        if row is None or int(row[4]) < time.time() or str(row[1]) not in self._servers:
            raise InvalidRequest("This sign-in is unknown, already finished or expired: start it again.",
                                 param="state", code="invalid_oauth_state")
        subject, server = str(row[0]), str(row[1])
        try:
            verifier = self._credentials.sealer.open(subject, server, bytes(row[2]), bytes(row[3]),
                                                     "pkce:" + _state_hash(state))
        except Unreadable:  # mcp.credentials_key changed during the sign-in
            raise InvalidRequest("This sign-in cannot be finished: start it again.", param="state",
                                 code="invalid_oauth_state") from None
        oauth = self._servers[server]
        grant = await self._token(oauth, {"grant_type": "authorization_code", "code": code,
                                          "redirect_uri": oauth.settings.redirect_uri, "code_verifier": verifier})
        return await self._credentials.store(subject, server, grant.access_token, grant.refresh_token,
                                             grant.expires_at)

    async def cancel(self, state: str) -> None:
        """The authorization server answered with an error: forget the sign-in."""
        async with self._pool.connection() as conn:
            await conn.execute("DELETE FROM llmops_mcp_oauth_states WHERE state_hash = %s", (_state_hash(state),))

    async def refresh(self, server: str, refresh_token: str) -> Grant | None:
        oauth = self._servers.get(server)
        if oauth is None:
            return None
        try:
            return await self._token(oauth, {"grant_type": "refresh_token", "refresh_token": refresh_token})
        except UpstreamError:
            return None

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()

    def _server(self, server: str) -> OAuthServer:
        oauth = self._servers.get(server)
        if oauth is None:
            raise NotFound(f"No MCP server {server!r} signs in with OAuth.", code="mcp_server_not_found")
        return oauth

    async def _token(self, oauth: OAuthServer, form: dict[str, str]) -> Grant:
        s = oauth.settings
        body = {**form, "client_id": s.client_id}
        if s.client_secret is not None:
            body["client_secret"] = s.client_secret.get_secret_value()
        if oauth.resource:
            body["resource"] = oauth.resource
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=_TIMEOUT)
        try:
            async with self._session.post(s.token_url, data=body, headers={"accept": "application/json"}) as reply:
                answer: Any = await reply.json(content_type=None)
                status = reply.status
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise UpstreamError(f"The authorization server did not answer ({type(exc).__name__}).",
                                code="oauth_token_failed") from None
        return _grant(status, answer)


def _grant(status: int, answer: Any) -> Grant:
    """The token endpoint's answer as a ``Grant``; its error code (never its description) otherwise."""
    if status != 200 or not isinstance(answer, dict) or not isinstance(answer.get("access_token"), str):
        error = answer.get("error") if isinstance(answer, dict) else None
        said = error if isinstance(error, str) and error.isascii() and len(error) < 64 else f"status {status}"
        raise UpstreamError(f"The authorization server refused the token request ({said}).",
                            code="oauth_token_failed")
    refresh, expires_in = answer.get("refresh_token"), answer.get("expires_in")
    expires = int(time.time() + expires_in) if isinstance(expires_in, int | float) and expires_in > 0 else None
    return Grant(answer["access_token"], refresh if isinstance(refresh, str) else None, expires)
