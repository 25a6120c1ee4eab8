"""One front door for every route: declared with its auth mode and policy action, entered the same way.

==========  ====================================================================================
auth mode   what the door does before the handler runs
==========  ====================================================================================
key         with ``authn`` in the chain: the bearer is authenticated by the chain's authenticator
            (401 with a ``WWW-Authenticate: Bearer`` challenge otherwise); without it, the caller
            is the ``default`` tenant
admin       always authenticated, and the key must have ``auth.admin_role`` (403 otherwise)
node        the request is signed by a node's own enrolled key, or for enrollment by the key it
            presents (``gateway/http/heartbeat.py``, ``executors.signing``; 401 otherwise)
none        public (health, readiness, metrics)
==========  ====================================================================================

Then, for routes that declare a ``resource``, the policy gate is asked with the route's action (see
``gateway/kernel/policy.py`` for each action's input); ``limited`` routes draw one request from the
caller's key and tenant rate limits (uploads, searches, admin calls). Chain routes (chat, embeddings,
...) leave policy and limits to the chain. Route label and error code go to the access log and
metrics; every error is rendered here, in the envelope the door names (``errors``: OpenAI's unless the
route says otherwise, as the Anthropic Messages routes do), and the transport's last-resort error
handler uses the same one once the door was entered.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.http.asgi import Endpoint
from gateway.http.openapi import Api, Entry
from gateway.http.responses import JSON, error_response
from gateway.kernel.config.sections.limits import LimitsSettings
from gateway.kernel.context import Principal
from gateway.kernel.errors import (
    AuthenticationFailed,
    ErrorBody,
    GatewayError,
    PermissionDenied,
    RateLimited,
    openai_body,
)
from gateway.kernel.observability.exchange import exchange_of
from gateway.kernel.policy import Action
from gateway.services.identity.authenticator import Authenticator
from gateway.services.limits.limiter import Limiter
from gateway.services.policy.gate import PolicyGate, denied
from middleware.limits.headers import rate_headers
from middleware.limits.stage import request_buckets

AuthMode = Literal["key", "admin", "node", "none"]
Resource = Callable[[Request], Mapping[str, Any]]
NodeAuth = Callable[[Request, bytes], Awaitable[None]]  # raises AuthenticationFailed
Handler = Callable[[Request, "Principal | None"], Awaitable[Any]]

CHALLENGE = 'Bearer realm="llmops-gateway"'
_EMPTY_RESOURCE: dict[str, Any] = {"model": "", "modality": "", "tools": [], "secrets": [], "egress": [],
                                   "vector_stores": []}


@dataclass(frozen=True, slots=True)
class Door:
    """How a route is entered. ``action`` names the policy action (``chain`` routes: the chain asks)."""

    auth: AuthMode
    action: Action | Literal["health", "metrics", "node_heartbeat", "node_enroll"]
    label: str
    resource: Resource | None = None  # ask the policy at the door with this resource
    limited: bool = False
    chain: bool = False  # the filter chain decides policy and limits
    errors: ErrorBody = openai_body  # how this route's errors are rendered (the API's own envelope)


class DoorRoute(Route):
    """A Starlette route that remembers its door and its API description (``/openapi.json`` reads both)."""

    def __init__(self, path: str, endpoint: Endpoint, method: str, door: Door, api: Api) -> None:
        super().__init__(path, endpoint, methods=[method])
        self.method = method
        self.door = door
        self.api = api

    def entry(self) -> Entry:
        d = self.door
        return Entry(self.path, self.method, self.api, d.auth, d.resource is not None and not d.chain, d.limited,
                     d.chain)


class FrontDoor:
    def __init__(
        self,
        *,
        authenticator: Authenticator,
        authn: bool,
        admin_role: str,
        gate: PolicyGate,
        limiter: Limiter | None,
        limits: LimitsSettings,
        node_auth: NodeAuth | None = None,
    ) -> None:
        self._authenticator = authenticator
        self._authn = authn
        self._admin_role = admin_role
        self._gate = gate
        self._limiter = limiter
        self._limits = limits
        self._node_auth = node_auth

    def json(self, path: str, method: str, door: Door, handler: Handler, api: Api) -> DoorRoute:
        """A route whose handler returns a JSON document (sent with ``api.status``)."""

        async def respond(request: Request, principal: Principal | None) -> Response:
            return Response(orjson.dumps(await handler(request, principal)), status_code=api.status,
                            media_type=JSON)

        return self.raw(path, method, door, respond, api)

    def raw(self, path: str, method: str, door: Door,
            handler: Callable[[Request, Principal | None], Awaitable[Response]], api: Api) -> DoorRoute:
        """A route whose handler returns its own ``Response`` (streams, binary bodies)."""

        async def endpoint(request: Request) -> Response:
            ex = exchange_of(request.scope)
            ex.route = door.label
            ex.error_body = door.errors
            try:
                principal = await self.enter(request, door)
                return await handler(request, principal)
            except GatewayError as err:
                ex.error_code = err.code
                return error_response(err, door.errors)

        return DoorRoute(path, Endpoint(endpoint), method, door, api)

    async def enter(self, request: Request, door: Door) -> Principal | None:
        """Authenticate, authorize and rate-limit ``request`` as ``door`` says; the caller, if known."""
        principal = await self._authenticate(request, door)
        if door.resource is not None and not door.chain:
            resource = {**_EMPTY_RESOURCE, **door.resource(request)}
            request_id = exchange_of(request.scope).request_id
            decision = await self._gate.decide(door.action, principal, resource, request_id)  # type: ignore[arg-type]
            if not decision.allow:
                raise denied(decision)
        if door.limited and self._limiter is not None:
            await self._limit(principal)
        return principal

    async def _authenticate(self, request: Request, door: Door) -> Principal | None:
        if door.auth == "none":
            return None
        if door.auth == "node":
            if self._node_auth is None:
                raise AuthenticationFailed("Node requests are not accepted: tools.enrollment is off.")
            await self._node_auth(request, await request.body())
            return None
        if door.auth == "key" and not self._authn:
            return None
        try:
            principal = await self._authenticator.authenticate(request.headers)
        except AuthenticationFailed as err:
            err.headers.setdefault("www-authenticate", CHALLENGE)  # RFC 9110: a 401 names its scheme
            raise
        if door.auth == "admin" and self._admin_role not in principal.roles:
            raise PermissionDenied(f"The admin API needs the {self._admin_role!r} role.", code="admin_required")
        return principal

    async def _limit(self, principal: Principal | None) -> None:
        assert self._limiter is not None
        window_s = self._limits.window_s
        buckets = [b for b in request_buckets(self._limits, principal, None, 0) if b.dimension == "requests"]
        if not buckets:
            return
        outcome = await self._limiter.hit(buckets, window_s)
        if not outcome.allowed:
            headers = rate_headers(buckets, outcome)
            bucket = buckets[outcome.refused]
            raise RateLimited(
                f"Rate limit reached for {bucket.name.rpartition(':')[0]} on requests per {window_s}s: "
                f"limit {bucket.limit}.",
                headers={**headers, "retry-after": str(max(1, math.ceil(outcome.reset_s)))},
            )
