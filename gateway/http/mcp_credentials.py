"""A caller's own upstream MCP tokens (servers with ``credential: per_subject``).

    PUT    /v1/mcp/credentials/{server}  {"token": "..."} → {"object": "mcp.credential", "server",
                                                             "updated_at", "fingerprint"}
    GET    /v1/mcp/credentials           → {"object": "list", "data": [credential, ...]}
    DELETE /v1/mcp/credentials/{server}  → {"object": "mcp.credential.deleted", "server", "deleted": true}

    POST   /v1/mcp/oauth/{server}/authorize → {"object": "mcp.oauth_authorization", "server",
                                            "authorization_url", "expires_at"}: open it in a browser
    GET    /v1/mcp/oauth/callback?state=..&code=..  (the authorization server redirects here; no key: the
                                            state names the sign-in) → the stored credential, as PUT's

The subject is the caller's (``subject_id``: the JWT's ``sub``, else the key, within the tenant); nobody
reads or deletes another subject's tokens, and no route ever returns a token: only a keyed fingerprint.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Literal

from msgspec import Meta, Struct
from starlette.requests import Request

from gateway.http.parsing import parse_object, validate
from gateway.kernel.context import Principal
from gateway.kernel.errors import InvalidRequest, NotFound, PermissionDenied
from gateway.kernel.mcp import subject_id
from gateway.services.mcp.credentials import MAX_TOKEN_BYTES, PostgresCredentials
from gateway.services.mcp.oauth import OAuthFlows

Token = Annotated[str, Meta(min_length=1, max_length=MAX_TOKEN_BYTES, pattern=r"^[!-~]+$")]


class CredentialPut(Struct, forbid_unknown_fields=True):
    """``PUT /v1/mcp/credentials/{server}``: the token the gateway sends that server for this caller
    (visible ASCII, no blanks: it travels in a header)."""

    token: Token


class McpCredential(Struct):
    object: Literal["mcp.credential"]
    server: str
    updated_at: int
    fingerprint: str


class McpCredentialList(Struct):
    object: Literal["list"]
    data: list[McpCredential]


class McpCredentialDeleted(Struct):
    object: Literal["mcp.credential.deleted"]
    server: str
    deleted: bool


class McpOAuthAuthorization(Struct):
    object: Literal["mcp.oauth_authorization"]
    server: str
    authorization_url: str
    expires_at: int


class OAuthCallbackQuery(Struct):
    """What the authorization server appends to the redirect (RFC 6749 §4.1.2)."""

    state: Annotated[str, Meta(min_length=1, max_length=512)]
    code: Annotated[str, Meta(min_length=1, max_length=4096)] | None = None
    error: Annotated[str, Meta(max_length=256)] | None = None
    error_description: Annotated[str, Meta(max_length=2048)] | None = None
    iss: Annotated[str, Meta(max_length=2048)] | None = None


def subject_of(caller: Principal | None) -> str:
    if caller is None:
        raise PermissionDenied("Per-subject MCP credentials need an authenticated caller (authn in the chain).",
                               code="authentication_required")
    return subject_id(caller.tenant, caller.key_id, caller.claims)


def server_param(request: Request) -> dict[str, Any]:
    """The policy's resource for ``mcp_credentials``: the server named in the path (``""`` on list)."""
    return {"server": str(request.path_params.get("server", ""))}


class CredentialsApi:
    def __init__(self, store: PostgresCredentials, known: Callable[[str], Awaitable[bool]]) -> None:
        self._store = store
        self._known = known  # servers that take per-subject tokens (config, and those registered at runtime)

    async def put(self, request: Request, caller: Principal | None) -> dict[str, Any]:
        subject, server = subject_of(caller), await self._server(request)
        body = validate(parse_object(await request.body()), CredentialPut)
        return (await self._store.store(subject, server, body.token)).to_json()

    async def list(self, request: Request, caller: Principal | None) -> dict[str, Any]:
        stored = await self._store.stored(subject_of(caller))
        return {"object": "list", "data": [c.to_json() for c in stored]}

    async def delete(self, request: Request, caller: Principal | None) -> dict[str, Any]:
        subject, server = subject_of(caller), str(request.path_params["server"])
        if not await self._store.delete(subject, server):
            raise NotFound(f"No token is stored for MCP server {server!r}.", code="mcp_credential_not_found")
        return {"object": "mcp.credential.deleted", "server": server, "deleted": True}

    async def _server(self, request: Request) -> str:
        server = str(request.path_params["server"])
        if not await self._known(server):
            raise NotFound(f"No MCP server {server!r} takes per-subject credentials.", code="mcp_server_not_found")
        return server


class OAuthApi:
    def __init__(self, flows: OAuthFlows) -> None:
        self._flows = flows

    async def authorize(self, request: Request, caller: Principal | None) -> dict[str, Any]:
        subject, server = subject_of(caller), str(request.path_params["server"])
        url, expires = await self._flows.start(subject, server)
        return {"object": "mcp.oauth_authorization", "server": server, "authorization_url": url,
                "expires_at": expires}

    async def callback(self, request: Request, caller: Principal | None) -> dict[str, Any]:
        query = validate(dict(request.query_params), OAuthCallbackQuery, strict=False)
        if query.error is not None:
            await self._flows.cancel(query.state)
            code = query.error if query.error.isascii() and query.error.isidentifier() else "error"
            raise InvalidRequest(f"The authorization server did not grant access ({code}).", param="error",
                                 code="oauth_denied")
        if query.code is None:
            raise InvalidRequest("The redirect carries no code.", param="code")
        return (await self._flows.finish(query.state, query.code)).to_json()
