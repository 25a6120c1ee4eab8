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
import importlib.metadata
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.routing import Router
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.http import api_types as t
from gateway.http.admin_keys import KeyAdmin, KeyQuery, NewKey, UsageQuery
from gateway.http.admin_mcp import McpServerAdmin, NewMcpServer
from gateway.http.admin_state import DesiredDiff, DesiredState, StateAdmin
from gateway.http.batches import BatchesApi
from gateway.http.conversations import ConversationsApi
from gateway.http.front_door import Door, DoorRoute, FrontDoor
from gateway.http.health import OPENMETRICS, HealthEndpoints
from gateway.http.heartbeat import NodeChannel
from gateway.http.mcp.endpoint import McpEndpoint, loopback
from gateway.http.mcp.envelope import jsonrpc_body
from gateway.http.mcp.tools import McpTools
from gateway.http.mcp_credentials import (
    CredentialPut,
    CredentialsApi,
    McpCredential,
    McpCredentialDeleted,
    McpCredentialList,
    McpOAuthAuthorization,
    OAuthApi,
    OAuthCallbackQuery,
    server_param,
)
from gateway.http.mcp_pins import ApproveDefinition, McpToolDefinition, McpToolDefinitionList, PinsAdmin
from gateway.http.messages.endpoint import MessagesEndpoint
from gateway.http.messages.errors import anthropic_body
from gateway.http.messages.schema import MessagesInput, MessagesRequest
from gateway.http.models import ModelsEndpoint
from gateway.http.nodes import NodeAdmin
from gateway.http.openai_json import JsonEndpoint, TranscriptionEndpoint
from gateway.http.openapi import Api, describe
from gateway.http.parsing import validate
from gateway.http.responses_api.background import BackgroundResponses
from gateway.http.responses_api.endpoint import ResponsesEndpoint
from gateway.http.responses_api.files import InputFiles
from gateway.http.responses_api.state import ResponseState
from gateway.http.stored_responses import StoredResponsesApi
from gateway.http.vector_stores import VectorStoreApi
from gateway.kernel.config import Settings
from gateway.kernel.context import Principal
from gateway.kernel.observability.exchange import RequestIds
from gateway.kernel.schemas import (
    BatchCreate,
    BatchPage,
    ChatCompletionRequest,
    CompletionRequest,
    EmbeddingRequest,
    FilePage,
    FileUpload,
    ImageRequest,
    IncludeQuery,
    ItemPage,
    Page,
    ResponseQuery,
    ResponsesRequest,
    SpeechRequest,
    TranscriptionUpload,
    VectorStoreCreate,
    VectorStoreFileCreate,
    VectorStoreSearch,
)
from gateway.reconcile.controller import Reconciler
from gateway.reconcile.switch import Switch
from gateway.services.batches.service import BatchService
from gateway.services.mcp.credentials import PostgresCredentials
from gateway.services.mcp.pins import PinnedDefinitions
from gateway.wiring import STARTUP_ERRORS, Gateway, node_plane, startup_message
from middleware.tools.direct import build as direct_tools
from middleware.tools.mcp.shared import registry_of
from middleware.transport import AccessLogMiddleware, BodyLimitMiddleware, ErrorMiddleware, RequestIdMiddleware


def build_app(gateway: Gateway, on_started: Callable[[], None] | None = None, *, source: Path | None = None,
              prepare: Callable[[Settings], Settings] | None = None) -> ASGIApp:
    """``source``: the config file or directory the reconcile loop watches (and SIGHUP re-reads);
    ``prepare``: what ``serve`` does to every desired state before it is checked (command-line overrides)."""
    settings = gateway.settings
    switch = Switch()
    app: ASGIApp = BodyLimitMiddleware(switch, settings.server.max_body_bytes)
    app = ErrorMiddleware(app, gateway.log, envelopes={"/v1/messages": anthropic_body})
    app = AccessLogMiddleware(app, gateway.log, gateway.metrics, enabled=settings.server.access_log)
    app = RequestIdMiddleware(app, RequestIds(), settings.server.request_id_header)
    reconciler = Reconciler(gateway, switch, route_table, source, prepare or _as_is)
    return Lifespan(app, gateway, reconciler, on_started)


def route_table(gateway: Gateway) -> ASGIApp:
    """One generation's routes (``gateway/reconcile/switch.py`` swaps them whole)."""
    return Router(routes=list(routes(gateway)), redirect_slashes=False)


def _as_is(settings: Settings) -> Settings:
    return settings


class Lifespan:
    """Pure ASGI: starts the gateway and builds the route table on ``lifespan.startup``, closes it on
    shutdown. A known startup failure (a config key, a policy file, a store) is reported as one line
    (``gateway.startup_error``, and uvicorn's ``startup.failed`` message) instead of a traceback."""

    def __init__(self, app: ASGIApp, gateway: Gateway, reconciler: Reconciler,
                 on_started: Callable[[], None] | None) -> None:
        self.app = app
        self._gateway = gateway
        self._reconciler = reconciler
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
        self._reconciler.start()
        _settle_heap()
        flusher = asyncio.create_task(_flush_logs(gateway))
        await send({"type": "lifespan.startup.complete"})
        if self._on_started is not None:
            self._on_started()
        await receive()  # lifespan.shutdown
        flusher.cancel()
        await self._reconciler.aclose()
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
    files = VectorStoreApi(services.vector_stores, batch_lines=s.batches.max_lines)
    table = [*_openai(door, gateway), *_anthropic(door, gateway), *_files(door, files),
             *_batches(door, services.batches),
             *_stored_responses(door, StoredResponsesApi(services.responses)),
             *_conversations(door, ConversationsApi(services.responses)),
             *_admin(door, gateway), *_nodes(door, gateway, channel), *_mcp(door, gateway),
             *_mcp_credentials(door, gateway), *_mcp_pins(door, gateway),
             *_operations(door, gateway)]
    table.append(_described(door, gateway, table))
    return table


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
    state = ResponseState(services.responses.responses, services.responses.conversations)
    background = BackgroundResponses(services.responses, s.routing.region_header)
    responses = ResponsesEndpoint(gateway, InputFiles(services.vector_stores, services.gate), state, background)
    return [
        door.raw("/v1/chat/completions", "POST", Door("key", "chat", "chat", chain=True), chat.handle,
                 Api("Create a chat completion", body=ChatCompletionRequest, reply=t.ChatCompletion, stream=True)),
        door.raw("/v1/responses", "POST", Door("key", "chat", "responses", chain=True), responses.handle,
                 Api("Create a response", body=ResponsesRequest, reply=t.ResponseObject, stream=True)),
        door.raw("/v1/completions", "POST", Door("key", "completion", "completions", chain=True), completions.handle,
                 Api("Create a completion", body=CompletionRequest, reply=t.Completion, stream=True)),
        door.raw("/v1/embeddings", "POST", Door("key", "embeddings", "embeddings", chain=True), embeddings.handle,
                 Api("Create embeddings", body=EmbeddingRequest, reply=t.EmbeddingList)),
        door.raw("/v1/images/generations", "POST", Door("key", "image", "images", chain=True), images.handle,
                 Api("Create images", body=ImageRequest, reply=t.ImagesResponse)),
        door.raw("/v1/audio/speech", "POST", Door("key", "audio", "speech", chain=True), speech.handle,
                 Api("Create speech", body=SpeechRequest, media=("application/octet-stream", "audio/mpeg",
                                                                  "audio/wav", "audio/opus", "audio/aac",
                                                                  "audio/flac", "audio/pcm"))),
        door.raw("/v1/audio/transcriptions", "POST", Door("key", "audio", "transcriptions", chain=True),
                 transcriptions.handle, Api("Transcribe audio", form=TranscriptionUpload, reply=t.Transcription,
                                            media=("text/plain",))),
        door.json("/v1/models", "GET", Door("key", "models", "models"), models.list,
                  Api("List the models this caller may use", reply=t.ModelList)),
        door.json("/v1/models/{model:path}", "GET", Door("key", "models", "models"), models.get,
                  Api("Retrieve a model", reply=t.Model)),
    ]


def _anthropic(door: FrontDoor, gateway: Gateway) -> list[DoorRoute]:
    """Anthropic's Messages API, run through the chat chain; errors in Anthropic's envelope. ``count_tokens``
    is authorized in its handler like a create (grants, then the policy's ``chat`` action on the model)
    and draws one request from the caller's rate limits."""
    assert gateway.services is not None
    messages = MessagesEndpoint(gateway, gateway.services.gate)
    create = Door("key", "chat", "messages", chain=True, errors=anthropic_body)
    count = Door("key", "chat", "messages_count_tokens", limited=True, errors=anthropic_body)
    return [
        door.raw("/v1/messages", "POST", create, messages.create,
                 Api("Create a message (Anthropic's Messages API)", body=MessagesRequest, reply=t.AnthropicMessage,
                     stream=True, error=t.AnthropicError)),
        door.json("/v1/messages/count_tokens", "POST", count, messages.count_tokens,
                  Api("Count a message's input tokens (an estimate)", body=MessagesInput, reply=t.TokenCount,
                      errors=(404,), error=t.AnthropicError)),
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
        door.json("/v1/files", "POST", files(limited=True), api.create_file,
                  Api("Upload a file", form=FileUpload, reply=t.FileObject)),
        door.json("/v1/files", "GET", files(), api.list_uploaded_files,
                  Api("List files", query=FilePage, reply=t.FileList)),
        door.json("/v1/files/{file_id}", "GET", files(), api.get_file, Api("Retrieve a file", reply=t.FileObject)),
        door.json("/v1/files/{file_id}", "DELETE", files(), api.delete_file, Api("Delete a file", reply=t.Deleted)),
        door.json("/v1/vector_stores", "POST", stores(limited=True), api.create_store,
                  Api("Create a vector store", body=VectorStoreCreate, reply=t.VectorStore, errors=(404,))),
        door.json("/v1/vector_stores", "GET", stores(), api.list_stores,
                  Api("List vector stores", query=Page, reply=t.VectorStoreList)),
        door.json(vs, "GET", stores(), api.get_store, Api("Retrieve a vector store", reply=t.VectorStore)),
        door.json(vs, "DELETE", stores(), api.delete_store, Api("Delete a vector store", reply=t.Deleted)),
        door.json(vsf, "POST", stores(limited=True), api.add_file,
                  Api("Add a file to a vector store", body=VectorStoreFileCreate, reply=t.VectorStoreFile)),
        door.json(vsf, "GET", stores(), api.list_files,
                  Api("List a vector store's files", query=Page, reply=t.VectorStoreFileList)),
        door.json(vsf + "/{file_id}", "GET", stores(), api.get_store_file,
                  Api("Retrieve a vector store file", reply=t.VectorStoreFile)),
        door.json(vsf + "/{file_id}", "DELETE", stores(), api.detach_file,
                  Api("Remove a file from a vector store", reply=t.Deleted)),
        door.json(vs + "/search", "POST", search, api.search,
                  Api("Search a vector store", body=VectorStoreSearch, reply=t.SearchPage)),
    ]


def _batch(request: Request) -> Mapping[str, Any]:
    return {"batch_id": request.path_params.get("batch_id", "")}


def _batches(door: FrontDoor, service: BatchService | None) -> list[DoorRoute]:
    """The Batch API (lines run through the chain as the batch's creator) and file downloads."""
    if service is None:
        return []
    api = BatchesApi(service)

    def batches(limited: bool = False) -> Door:
        return Door("key", "batches", "batches", resource=_batch, limited=limited)

    one = "/v1/batches/{batch_id}"
    return [
        door.raw("/v1/files/{file_id}/content", "GET", Door("key", "files", "files", resource=_file), api.content,
                 Api("Retrieve a file's content (a batch's input, output and error files)",
                     media=("application/octet-stream",))),
        door.json("/v1/batches", "POST", batches(limited=True), api.create,
                  Api("Create a batch from a file uploaded with purpose 'batch'", body=BatchCreate, reply=t.Batch,
                      errors=(404,))),
        door.json("/v1/batches", "GET", batches(), api.list, Api("List batches", query=BatchPage, reply=t.BatchList)),
        door.json(one, "GET", batches(), api.retrieve, Api("Retrieve a batch", reply=t.Batch)),
        door.json(one + "/cancel", "POST", batches(limited=True), api.cancel,
                  Api("Cancel a batch", reply=t.Batch, errors=(400,))),
    ]


def _response(request: Request) -> Mapping[str, Any]:
    return {"responses": [request.path_params.get("response_id", "")]}


def _conversation(request: Request) -> Mapping[str, Any]:
    conversation = request.path_params.get("conversation_id")
    return {"conversations": [conversation] if conversation else []}


def _stored_responses(door: FrontDoor, api: StoredResponsesApi) -> list[DoorRoute]:
    """Stored responses (``POST /v1/responses`` creates them, with the chain)."""
    stored = Door("key", "responses", "responses", resource=_response)
    one = "/v1/responses/{response_id}"
    return [
        door.raw(one, "GET", stored, api.get, Api("Retrieve a response, or resume a background one's stream",
                                                  query=ResponseQuery, reply=t.ResponseObject, stream=True)),
        door.json(one, "DELETE", stored, api.delete, Api("Delete a response", reply=t.Deleted)),
        door.json(one + "/input_items", "GET", stored, api.input_items,
                  Api("List a response's input items", query=ItemPage, reply=t.ItemList)),
        door.json(one + "/cancel", "POST", Door("key", "responses", "responses", resource=_response, limited=True),
                  api.cancel, Api("Cancel a background response", reply=t.ResponseObject, errors=(400,))),
    ]


def _conversations(door: FrontDoor, api: ConversationsApi) -> list[DoorRoute]:
    def conversations(limited: bool = False) -> Door:
        return Door("key", "conversations", "conversations", resource=_conversation, limited=limited)

    table, one = "/v1/conversations", "/v1/conversations/{conversation_id}"
    items, item = one + "/items", one + "/items/{item_id}"
    conversation = t.ConversationObject
    return [
        door.json(table, "POST", conversations(limited=True), api.create,
                  Api("Create a conversation", body=t.ConversationCreate, reply=conversation)),
        door.json(one, "GET", conversations(), api.get, Api("Retrieve a conversation", reply=conversation)),
        door.json(one, "POST", conversations(limited=True), api.update,
                  Api("Update a conversation's metadata", body=t.ConversationUpdate, reply=conversation)),
        door.json(one, "DELETE", conversations(), api.delete, Api("Delete a conversation", reply=t.Deleted)),
        door.json(items, "POST", conversations(limited=True), api.add_items,
                  Api("Add items to a conversation", body=t.ItemsCreate, query=IncludeQuery, reply=t.ItemList)),
        door.json(items, "GET", conversations(), api.list_items,
                  Api("List a conversation's items", query=ItemPage, reply=t.ItemList)),
        door.json(item, "GET", conversations(), api.get_item,
                  Api("Retrieve a conversation item", query=IncludeQuery, reply=t.Item)),
        door.json(item, "DELETE", conversations(), api.delete_item,
                  Api("Delete a conversation item", reply=conversation)),
    ]


def _admin_door(path: str) -> Door:
    return Door("admin", "admin", "admin", resource=lambda request: {"path": path}, limited=True)


def _admin(door: FrontDoor, gateway: Gateway) -> list[DoorRoute]:
    services = gateway.services
    assert services is not None
    keys = KeyAdmin(services.authenticator, gateway.settings.auth.key_prefix)
    one, table = "/admin/keys/{key_id}", "/admin/keys"
    out = [
        door.json(table, "POST", _admin_door(table), keys.create,
                  Api("Create a virtual key", body=NewKey, reply=t.NewKeyReply, status=201, errors=(409,))),
        door.json(table, "GET", _admin_door(table), keys.list,
                  Api("List virtual keys", query=KeyQuery, reply=t.KeyList)),
        door.json(one, "GET", _admin_door(one), keys.show, Api("Show a key", reply=t.KeyRecord)),
        door.json(one, "DELETE", _admin_door(one), keys.revoke, Api("Revoke a key", reply=t.KeyRecord,
                                                                    errors=(409,))),
        door.json(one + "/revoke", "POST", _admin_door(one + "/revoke"), keys.revoke,
                  Api("Revoke a key", reply=t.KeyRecord, errors=(409,))),
        door.json(one + "/rotate", "POST", _admin_door(one + "/rotate"), keys.rotate,
                  Api("Rotate a key's secret", reply=t.NewKeyReply, errors=(409,))),
    ]
    ledger = services.ledger
    if ledger is not None:
        async def usage(request: Request, caller: Principal | None) -> dict[str, object]:
            q = validate(dict(request.query_params), UsageQuery, strict=False)
            return await ledger.snapshot(tenant=q.tenant, key_id=q.key_id)

        out.append(door.json("/admin/usage", "GET", _admin_door("/admin/usage"), usage,
                             Api("Usage and spend per key and tenant", query=UsageQuery, reply=t.Usage)))
    return out + _admin_mcp(door, gateway) + _admin_state(door, gateway)


def _admin_state(door: FrontDoor, gateway: Gateway) -> list[DoorRoute]:
    """Desired state, reconciled live (``gateway/reconcile``): report, apply, diff."""
    if gateway.control is None:
        return []
    state = StateAdmin(gateway.control)
    one, diff = "/admin/state", "/admin/state/diff"
    return [
        door.json(one, "GET", _admin_door(one), state.show,
                  Api("The running configuration: each resource's state, settings awaiting a restart",
                      reply=t.Document)),
        door.json(one, "PUT", _admin_door(one), state.apply,
                  Api("Apply a desired state live (rejected whole, with every error, when invalid)",
                      body=DesiredState, reply=t.Document, errors=(409,))),
        door.json(diff, "POST", _admin_door(diff), state.diff,
                  Api("What a desired state would change", body=DesiredDiff, reply=t.Document)),
    ]


def _admin_mcp(door: FrontDoor, gateway: Gateway) -> list[DoorRoute]:
    """Upstream MCP servers registered at runtime (``gateway/http/admin_mcp.py``)."""
    registry = registry_of(gateway.services) if gateway.services is not None else None
    if registry is None:
        return []
    servers = McpServerAdmin(registry)
    table, one = "/admin/mcp/servers", "/admin/mcp/servers/{name}"
    return [
        door.json(table, "POST", _admin_door(table), servers.create,
                  Api("Register an upstream MCP server", body=NewMcpServer, reply=t.Document, status=201,
                      errors=(409,))),
        door.json(table, "GET", _admin_door(table), servers.list, Api("List upstream MCP servers", reply=t.Document)),
        door.json(one, "GET", _admin_door(one), servers.show, Api("Show an upstream MCP server", reply=t.Document)),
        door.json(one, "DELETE", _admin_door(one), servers.delete,
                  Api("Remove an upstream MCP server", reply=t.Document, errors=(409,))),
    ]


def _nodes(door: FrontDoor, gateway: Gateway, channel: NodeChannel | None) -> list[DoorRoute]:
    """The node plane: enrollment and heartbeats (signed by each node's own key), and the node admin API."""
    scheduler = gateway.services.scheduler if gateway.services is not None else None
    if channel is None or scheduler is None or scheduler.book is None:
        return []
    nodes = NodeAdmin(scheduler.book, scheduler, gateway.log, gateway.settings.tools.enrollment.token_ttl_s)
    tokens, table, revoke = "/admin/nodes/tokens", "/admin/nodes", "/admin/nodes/{node_id}/revoke"
    return [
        door.json(channel.enroll_path, "POST", Door("node", "node_enroll", "node_enroll"), channel.enroll,
                  Api("Enroll a node (signed with its join token)", reply=t.Document, status=201, errors=(400,))),
        door.json(channel.heartbeat_path, "POST", Door("node", "node_heartbeat", "node_heartbeat"), channel.heartbeat,
                  Api("A node's heartbeat (signed with its key)", reply=t.Document, errors=(400,))),
        door.json(tokens, "POST", _admin_door(tokens), nodes.issue,
                  Api("Issue a node join token", reply=t.JoinToken, status=201, errors=(400,))),
        door.json(table, "GET", _admin_door(table), nodes.list, Api("List nodes", reply=t.NodeList)),
        door.json(revoke, "POST", _admin_door(revoke), nodes.revoke, Api("Revoke a node", reply=t.Document)),
    ]


def _mcp(door: FrontDoor, gateway: Gateway) -> list[DoorRoute]:
    """``POST /mcp``: the gateway's tools as an MCP server (``gateway/http/mcp``). Each request draws one from
    the caller's request limits; the handler puts each listed tool and each call to the policy (``tool_call``)."""
    services, s = gateway.services, gateway.settings
    assert services is not None
    endpoint = McpEndpoint(McpTools(direct_tools(services)), version=_version(),
                           max_body_bytes=s.server.max_body_bytes,
                           loopback_only=not services.needs.identity and loopback(s.server.host))
    gateway.composition.push_async_callback(endpoint.aclose)
    mcp = Door("key", "tool_call", "mcp", limited=True, errors=jsonrpc_body)
    return [door.raw("/mcp", "POST", mcp, endpoint.handle,
                     Api("The gateway's tools as an MCP server (streamable HTTP, stateless: JSON-RPC 2.0 in, "
                         "an SSE stream or JSON out)", body=t.McpMessage, reply=t.JsonRpcReply,
                         events=t.McpEvent, others={202: None}, errors=(403, 404, 406, 415, 421, 503),
                         error=t.JsonRpcError))]


def _mcp_credentials(door: FrontDoor, gateway: Gateway) -> list[DoorRoute]:
    """A caller's own tokens for ``per_subject`` upstream MCP servers (with ``mcp.credentials_key``)."""
    store = gateway.services.mcp_credentials if gateway.services is not None else None
    if not isinstance(store, PostgresCredentials):
        return []
    api = CredentialsApi(store, _mcp_server_known(gateway, per_subject=True))
    one, table = "/v1/mcp/credentials/{server}", "/v1/mcp/credentials"
    creds = Door("key", "mcp_credentials", "mcp_credentials", resource=server_param, limited=True)
    out = [
        door.json(one, "PUT", creds, api.put, Api("Store your token for an upstream MCP server", body=CredentialPut,
                                                  reply=McpCredential, errors=(503,))),
        door.json(table, "GET", creds, api.list, Api("List the upstream MCP servers you stored tokens for (never "
                                                     "the tokens)", reply=McpCredentialList, errors=(503,))),
        door.json(one, "DELETE", creds, api.delete, Api("Delete your token for an upstream MCP server",
                                                        reply=McpCredentialDeleted, errors=(503,))),
    ]
    if store.oauth is not None:
        oauth = OAuthApi(store.oauth)
        callback = Door("none", "mcp_credentials", "mcp_oauth_callback")
        out += [
            door.json("/v1/mcp/oauth/{server}/authorize", "POST", creds, oauth.authorize,
                      Api("Start signing in to an upstream MCP server (OAuth 2.1, PKCE): open the URL",
                          reply=McpOAuthAuthorization, errors=(503,))),
            door.json("/v1/mcp/oauth/callback", "GET", callback, oauth.callback,
                      Api("Where the authorization server sends the browser back: stores the token",
                          query=OAuthCallbackQuery, reply=McpCredential, errors=(400, 502, 503))),
        ]
    return out


def _mcp_server_known(gateway: Gateway, *, per_subject: bool) -> Callable[[str], Awaitable[bool]]:
    """Whether an upstream MCP server is registered (in config or at runtime through the admin API), and
    with ``per_subject`` whether it takes each caller's own token."""
    registry = registry_of(gateway.services) if gateway.services is not None else None
    configured = {s.name: s for s in gateway.settings.mcp.servers}

    async def known(name: str) -> bool:
        server = await registry.server(name) if registry is not None else configured.get(name)
        return server is not None and (not per_subject or server.credential == "per_subject")

    return known


def _mcp_pins(door: FrontDoor, gateway: Gateway) -> list[DoorRoute]:
    """Pinned upstream tool definitions: review, approve, revoke (admin)."""
    guard = gateway.services.mcp_guard if gateway.services is not None else None
    if not isinstance(guard, PinnedDefinitions):
        return []
    admin = PinsAdmin(guard, _mcp_server_known(gateway, per_subject=False), gateway.log)
    tools, tool = "/admin/mcp/servers/{name}/tools", "/admin/mcp/servers/{name}/tools/{tool}"
    return [
        door.json(tools, "GET", _admin_door(tools), admin.list,
                  Api("An MCP server's tool definitions: approved, pending, what changed", reply=McpToolDefinitionList,
                      errors=(503,))),
        door.json(tool + "/approve", "POST", _admin_door(tool + "/approve"), admin.approve,
                  Api("Approve (pin) a tool's pending definition", body=ApproveDefinition, reply=McpToolDefinition,
                      errors=(409, 503))),
        door.json(tool + "/revoke", "POST", _admin_door(tool + "/revoke"), admin.revoke,
                  Api("Withhold a tool until approved again", reply=McpToolDefinition, errors=(503,))),
    ]


def _operations(door: FrontDoor, gateway: Gateway) -> list[DoorRoute]:
    health = HealthEndpoints(gateway)
    live = Api("Liveness: the process answers", reply=t.Health)
    out = [
        door.raw("/healthz", "GET", Door("none", "health", "health"), health.healthz, live),
        door.raw("/livez", "GET", Door("none", "health", "health"), health.healthz, live),
        door.raw("/readyz", "GET", Door("none", "health", "health"), health.readyz,
                 Api("Readiness, per model", reply=t.Readiness, others={503: t.Readiness})),
        door.raw("/metrics", "GET", Door("none", "metrics", "metrics"), health.metrics,
                 Api("Prometheus metrics", media=(OPENMETRICS,))),
    ]
    return out


def _described(door: FrontDoor, gateway: Gateway, table: list[DoorRoute]) -> DoorRoute:
    """``GET /openapi.json``: the description of ``table``, this route included (built once, on first ask)."""
    document: dict[str, Any] = {}

    async def openapi(request: Request, principal: Principal | None) -> dict[str, Any]:
        if not document:
            document.update(description(gateway, table))
        return document

    return door.json("/openapi.json", "GET", Door("none", "health", "openapi"), openapi,
                     Api("This description (OpenAPI 3.1)", reply=t.Document))


def description(gateway: Gateway, table: list[DoorRoute]) -> dict[str, Any]:
    """The OpenAPI document of ``table`` (the whole route table: see ``routes``)."""
    assert gateway.services is not None
    return describe((r.entry() for r in table), title="llmops-gateway", version=_version(),
                    keys_required=gateway.services.needs.identity)


def _version() -> str:
    try:
        return importlib.metadata.version("llmops-gateway")
    except importlib.metadata.PackageNotFoundError:
        return "0.0.0"


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
