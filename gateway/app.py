"""The composition root: settings in, one ASGI application out; every route declared here, with its door.

Request path (outermost first)::

    RequestId → AccessLog (+metrics) → BodyLimit → Errors → Starlette routing
      → front door (auth mode, policy action, rate limit; gateway/http/front_door.py) → endpoint
      → parse + validate once, resolve the model → RequestContext → filter chain → Router → Backend

Routes are built at startup, once the services they are handed exist (``Gateway.start``).
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Callable, Mapping
from typing import Any

from starlette.requests import Request
from starlette.routing import Router
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.http.admin_keys import KeyAdmin
from gateway.http.front_door import Door, DoorRoute, FrontDoor
from gateway.http.health import HealthEndpoints
from gateway.http.heartbeat import NodeChannel
from gateway.http.models import ModelsEndpoint
from gateway.http.nodes import NodeAdmin
from gateway.http.openai_json import JsonEndpoint, TranscriptionEndpoint
from gateway.http.responses_api.endpoint import ResponsesEndpoint
from gateway.http.responses_api.files import InputFiles
from gateway.http.responses_api.state import ResponseState
from gateway.http.vector_stores import VectorStoreApi
from gateway.kernel.context import Principal
from gateway.kernel.observability.exchange import RequestIds
from gateway.kernel.schemas import (
    ChatCompletionRequest,
    CompletionRequest,
    EmbeddingRequest,
    ImageRequest,
    SpeechRequest,
)
from gateway.wiring import STARTUP_ERRORS, Gateway, node_plane, startup_message
from middleware.transport import AccessLogMiddleware, BodyLimitMiddleware, ErrorMiddleware, RequestIdMiddleware


def build_app(gateway: Gateway, on_started: Callable[[], None] | None = None) -> ASGIApp:
    settings = gateway.settings
    router = Router(routes=[], redirect_slashes=False)
    app: ASGIApp = ErrorMiddleware(router, gateway.log)
    app = BodyLimitMiddleware(app, settings.server.max_body_bytes)
    app = AccessLogMiddleware(app, gateway.log, gateway.metrics, enabled=settings.server.access_log)
    app = RequestIdMiddleware(app, RequestIds(), settings.server.request_id_header)
    return Lifespan(app, gateway, router, on_started)


class Lifespan:
    """Pure ASGI: starts the gateway and builds the route table on ``lifespan.startup``, closes it on
    shutdown. A known startup failure (a config key, a policy file, a store) is reported as one line
    (``gateway.startup_error``, and uvicorn's ``startup.failed`` message) instead of a traceback."""

    def __init__(self, app: ASGIApp, gateway: Gateway, router: Router,
                 on_started: Callable[[], None] | None) -> None:
        self.app = app
        self._gateway = gateway
        self._router = router
        self._on_started = on_started

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return
        await receive()  # lifespan.startup
        gateway = self._gateway
        try:
            await gateway.start()
        except STARTUP_ERRORS as exc:
            gateway.startup_error = startup_message(exc)
            await gateway.aclose()
            await send({"type": "lifespan.startup.failed", "message": gateway.startup_error})
            return
        self._router.routes.extend(routes(gateway))
        _settle_heap()
        flusher = asyncio.create_task(_flush_logs(gateway))
        await send({"type": "lifespan.startup.complete"})
        if self._on_started is not None:
            self._on_started()
        await receive()  # lifespan.shutdown
        flusher.cancel()
        await gateway.aclose()
        await send({"type": "lifespan.shutdown.complete"})


def routes(gateway: Gateway) -> list[DoorRoute]:
    """The whole route table: each path with its auth mode, policy action and rate limiting."""
    s, services = gateway.settings, gateway.services
    assert services is not None, "routes are built after Gateway.start"
    scheduler = services.scheduler
    book = scheduler.book if scheduler is not None and node_plane(s) else None
    channel = NodeChannel(book, scheduler, gateway.log) if book is not None and scheduler is not None else None
    door = FrontDoor(authenticator=services.authenticator, authn=services.needs.identity, admin_role=s.auth.admin_role,
                     gate=services.gate, limiter=services.limiter, limits=s.limits,
                     node_auth=channel.verify if channel is not None else None)
    return [*_openai(door, gateway), *_files(door, VectorStoreApi(services.vector_stores)),
            *_admin(door, gateway), *_nodes(door, gateway, channel), *_operations(door, gateway)]


def _openai(door: FrontDoor, gateway: Gateway) -> list[DoorRoute]:
    s = gateway.settings
    assert gateway.services is not None
    models = ModelsEndpoint(gateway, gateway.services.gate, s.policy.cache_ttl_s)
    chat = JsonEndpoint("chat", ChatCompletionRequest, gateway, streams=True)
    completions = JsonEndpoint("completions", CompletionRequest, gateway, streams=True)
    embeddings = JsonEndpoint("embeddings", EmbeddingRequest, gateway)
    images = JsonEndpoint("images", ImageRequest, gateway, default_model="dall-e-2")
    speech = JsonEndpoint("speech", SpeechRequest, gateway)
    transcriptions = TranscriptionEndpoint(gateway, s.server.max_body_bytes)
    services = gateway.services
    # No response store is wired yet: ``store`` is accepted and nothing is kept (issue 12, the store branch).
    responses = ResponsesEndpoint(gateway, InputFiles(services.vector_stores, services.gate), ResponseState())
    return [
        door.raw("/v1/chat/completions", "POST", Door("key", "chat", "chat", chain=True), chat.handle),
        door.raw("/v1/responses", "POST", Door("key", "chat", "responses", chain=True), responses.handle),
        door.raw("/v1/completions", "POST", Door("key", "completion", "completions", chain=True), completions.handle),
        door.raw("/v1/embeddings", "POST", Door("key", "embeddings", "embeddings", chain=True), embeddings.handle),
        door.raw("/v1/images/generations", "POST", Door("key", "image", "images", chain=True), images.handle),
        door.raw("/v1/audio/speech", "POST", Door("key", "audio", "speech", chain=True), speech.handle),
        door.raw("/v1/audio/transcriptions", "POST", Door("key", "audio", "transcriptions", chain=True),
                 transcriptions.handle),
        door.json("/v1/models", "GET", Door("key", "models", "models"), models.list),
        door.json("/v1/models/{model:path}", "GET", Door("key", "models", "models"), models.get),
    ]


def _file(request: Request) -> Mapping[str, Any]:
    return {"file_id": request.path_params.get("file_id", "")}


def _store(request: Request) -> Mapping[str, Any]:
    store = request.path_params.get("store_id")
    return {"vector_stores": [store] if store else [], "file_id": request.path_params.get("file_id", "")}


def _files(door: FrontDoor, api: VectorStoreApi) -> list[DoorRoute]:
    def files(limited: bool = False) -> Door:
        return Door("key", "files", "files", resource=_file, limited=limited)

    def stores(limited: bool = False) -> Door:
        return Door("key", "vector_stores", "vector_stores", resource=_store, limited=limited)

    search = Door("key", "rag_query", "vector_store_search", resource=_store, limited=True)
    vs, vsf = "/v1/vector_stores/{store_id}", "/v1/vector_stores/{store_id}/files"
    return [
        door.json("/v1/files", "POST", files(limited=True), api.create_file),
        door.json("/v1/files", "GET", files(), api.list_uploaded_files),
        door.json("/v1/files/{file_id}", "GET", files(), api.get_file),
        door.json("/v1/files/{file_id}", "DELETE", files(), api.delete_file),
        door.json("/v1/vector_stores", "POST", stores(limited=True), api.create_store),
        door.json("/v1/vector_stores", "GET", stores(), api.list_stores),
        door.json(vs, "GET", stores(), api.get_store),
        door.json(vs, "DELETE", stores(), api.delete_store),
        door.json(vsf, "POST", stores(limited=True), api.add_file),
        door.json(vsf, "GET", stores(), api.list_files),
        door.json(vsf + "/{file_id}", "GET", stores(), api.get_store_file),
        door.json(vsf + "/{file_id}", "DELETE", stores(), api.detach_file),
        door.json(vs + "/search", "POST", search, api.search),
    ]


def _admin_door(path: str) -> Door:
    return Door("admin", "admin", "admin", resource=lambda request: {"path": path}, limited=True)


def _admin(door: FrontDoor, gateway: Gateway) -> list[DoorRoute]:
    services = gateway.services
    assert services is not None
    keys = KeyAdmin(services.authenticator, gateway.settings.auth.key_prefix)
    one, table = "/admin/keys/{key_id}", "/admin/keys"
    out = [
        door.json(table, "POST", _admin_door(table), keys.create, status=201),
        door.json(table, "GET", _admin_door(table), keys.list),
        door.json(one, "GET", _admin_door(one), keys.show),
        door.json(one, "DELETE", _admin_door(one), keys.revoke),
        door.json(one + "/revoke", "POST", _admin_door(one + "/revoke"), keys.revoke),
        door.json(one + "/rotate", "POST", _admin_door(one + "/rotate"), keys.rotate),
    ]
    ledger = services.ledger
    if ledger is not None:
        async def usage(request: Request, caller: Principal | None) -> dict[str, object]:
            q = request.query_params
            return await ledger.snapshot(tenant=q.get("tenant"), key_id=q.get("key_id"))

        out.append(door.json("/admin/usage", "GET", _admin_door("/admin/usage"), usage))
    return out


def _nodes(door: FrontDoor, gateway: Gateway, channel: NodeChannel | None) -> list[DoorRoute]:
    """The node plane: enrollment and heartbeats (signed by each node's own key), and the node admin API."""
    scheduler = gateway.services.scheduler if gateway.services is not None else None
    if channel is None or scheduler is None or scheduler.book is None:
        return []
    nodes = NodeAdmin(scheduler.book, scheduler, gateway.log, gateway.settings.tools.enrollment.token_ttl_s)
    tokens, table, revoke = "/admin/nodes/tokens", "/admin/nodes", "/admin/nodes/{node_id}/revoke"
    return [
        door.json(channel.enroll_path, "POST", Door("node", "node_enroll", "node_enroll"), channel.enroll,
                  status=201),
        door.json(channel.heartbeat_path, "POST", Door("node", "node_heartbeat", "node_heartbeat"), channel.heartbeat),
        door.json(tokens, "POST", _admin_door(tokens), nodes.issue, status=201),
        door.json(table, "GET", _admin_door(table), nodes.list),
        door.json(revoke, "POST", _admin_door(revoke), nodes.revoke),
    ]


def _operations(door: FrontDoor, gateway: Gateway) -> list[DoorRoute]:
    health = HealthEndpoints(gateway)
    return [
        door.raw("/healthz", "GET", Door("none", "health", "health"), health.healthz),
        door.raw("/livez", "GET", Door("none", "health", "health"), health.healthz),
        door.raw("/readyz", "GET", Door("none", "health", "health"), health.readyz),
        door.raw("/metrics", "GET", Door("none", "metrics", "metrics"), health.metrics),
    ]


def _settle_heap() -> None:
    """Move everything built at startup out of the collector's sight, and collect less often.

    Modules, settings and pools live as long as the process; without this, every full collection
    walks them again, and those pauses land on whichever request allocated last.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 50, 100)


async def _flush_logs(gateway: Gateway) -> None:
    while True:
        await asyncio.sleep(0.5)
        gateway.log.flush()
