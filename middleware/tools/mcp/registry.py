"""The upstream MCP servers a gateway offers: from config (``mcp.servers``) and the admin API (PostgreSQL).

Discovery: ``tools`` lists a server's tools for one caller, cached ``mcp.list_ttl_s`` per (server,
subject) for ``per_subject`` servers and per server otherwise; each fresh listing goes through the
definition guard (``Services.mcp_guard``: only ``offered`` tools are offered, ``flagged`` ones are
logged) and is filtered by the server's ``allowed_tools``.

Credentials: ``none``; ``static`` (the secret named ``secret`` in ``tools.secrets``, for every caller);
``per_subject`` (the caller's own token from ``Services.mcp_credentials``, keyed by ``subject_id``). A
``per_subject`` call by a caller with no token fails with ``MissingCredential`` before reaching the
upstream. What a call returns is redacted: the injected token and every configured secret value never
reach the model, the trace or the logs.

Runtime servers are re-read from the store at most every ``REFRESH_S`` (so a server registered on one
replica is offered by all), once the store is in use: a database is configured, or this process has
registered a server. ``upstream_for`` is the one place where a server becomes a transport.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from executors.redact import Redactor
from executors.spec import Grants
from gateway.kernel.config import Settings
from gateway.kernel.config.sections.mcp import McpServer
from gateway.kernel.config.sections.tools import SecretSpec, ToolsSettings
from gateway.kernel.context import RequestContext
from gateway.kernel.mcp import SEPARATOR, UpstreamResult, UpstreamTool, subject_id
from gateway.kernel.observability.logging import JsonLog
from gateway.services.mcp.ports import CredentialStore, DefinitionGuard
from middleware.tools.mcp.http import HttpUpstream, UpstreamFailure
from middleware.tools.mcp.stdio import StdioUpstream
from middleware.tools.mcp.store import ServerStore
from middleware.tools.mcp.upstream import Upstream
from routers.scheduler import Scheduler

REFRESH_S = 1.0
TOKEN_SECRET = "mcp-token"  # how an injected token shows when redacted: [REDACTED:mcp-token]


class McpUnavailable(Exception):
    """A server that is not registered, not available in this build, or not answering (a clear message)."""


class MissingCredential(McpUnavailable):
    """A ``per_subject`` server and no token stored for this caller."""


class ServerExists(Exception):
    """A server of that name is already configured or registered."""


def upstream_for(server: McpServer, scheduler: Scheduler | None, tools: ToolsSettings) -> Upstream | None:
    """The transport for ``server``: streamable HTTP for a ``url``; for a ``command``, the stdio server run
    in a sandbox on a data-plane node (each operation one ``mcp_stdio`` job); ``None`` when neither."""
    if server.url is not None:
        return HttpUpstream(server)
    if server.command:
        return StdioUpstream(server, scheduler, tools)
    return None


UpstreamFactory = Callable[[McpServer, Scheduler | None, ToolsSettings], Upstream | None]


@dataclass(frozen=True, slots=True)
class _Listing:
    tools: tuple[UpstreamTool, ...]
    expires: float


class McpRegistry:
    def __init__(self, settings: Settings, credentials: CredentialStore, guard: DefinitionGuard, log: JsonLog, *,
                 store: ServerStore | None = None, scheduler: Scheduler | None = None,
                 factory: UpstreamFactory = upstream_for, shared_store: bool = False) -> None:
        self._settings = settings
        self._config = {s.name: s for s in settings.mcp.servers}
        self._credentials = credentials
        self._guard = guard
        self._log = log
        self._store = store
        self._store_used = shared_store and store is not None
        self._scheduler = scheduler
        self._factory = factory
        self._secrets = _plain_secrets(settings.tools.secrets)
        self._runtime: dict[str, McpServer] = {}
        self._loaded_at = float("-inf")
        self._refresh = asyncio.Lock()
        self._upstreams: dict[str, tuple[McpServer, Upstream | None]] = {}
        self._listings: dict[tuple[str, str], _Listing] = {}

    def report_unavailable(self) -> None:
        """At startup: a warning for each configured server this build cannot run."""
        for server in self._config.values():
            if self._upstream(server) is None:
                self._log.warning("mcp_server_unavailable", server=server.name,
                                  reason="the server has neither a url nor a command")

    @property
    def configured(self) -> bool:
        """Whether any server can exist (configured, or registrable through the admin API)."""
        return bool(self._config) or self._store is not None

    # --- which servers -------------------------------------------------------------------------

    async def servers(self) -> dict[str, McpServer]:
        await self._refreshed()
        return {**self._runtime, **self._config}

    async def server(self, name: str) -> McpServer | None:
        if name in self._config:
            return self._config[name]
        return (await self.servers()).get(name)

    def is_configured(self, name: str) -> bool:
        return name in self._config

    async def runtime(self) -> list[McpServer]:
        await self._refreshed()
        return list(self._runtime.values())

    async def register(self, server: McpServer) -> None:
        """Raises ``ServerExists``; the store's errors are a 503."""
        if self._store is None:
            raise McpUnavailable("no store for runtime MCP servers")
        if server.name in self._config or not await self._store.add(server):
            raise ServerExists(server.name)
        self._store_used = True
        self._runtime[server.name] = server

    async def remove(self, name: str) -> bool:
        if self._store is None or name in self._config:
            return False
        removed = await self._store.delete(name)
        self._store_used = True
        self._runtime.pop(name, None)
        await self._forget(name)
        return removed

    # --- discovery -----------------------------------------------------------------------------

    async def tools(self, ctx: RequestContext, name: str, deadline: float) -> tuple[UpstreamTool, ...]:
        """The tools ``name`` offers this caller (cached); raises ``McpUnavailable``."""
        server = await self._known(name)
        key = (name, _subject(ctx) if server.credential == "per_subject" else "")
        now = time.monotonic()
        cached = self._listings.get(key)
        if cached is not None and cached.expires > now:
            return cached.tools
        upstream = self._available(server)
        token = await self._token(ctx, server, required=False)
        deadline = min(deadline, now + self._settings.mcp.list_timeout_s)  # a hung server holds no listing up
        try:
            listed = await upstream.list_tools(ctx, token, deadline)
        except (UpstreamFailure, Exception) as exc:
            raise McpUnavailable(self._redactor(server, token)(f"MCP server {name!r} could not list its tools: "
                                                              f"{_message(exc)}")) from None
        admitted = await self._guard.admit(name, listed)
        for tool, why in admitted.flagged.items():
            self._log.warning("mcp_tool_flagged", server=name, tool=tool, reason=why)
        for tool, why in admitted.held.items():
            self._log.warning("mcp_tool_held", server=name, tool=tool, reason=why)
        allowed = server.allowed_tools
        offered = tuple(t for t in admitted.offered if allowed is None or t.name in allowed)
        self._listings[key] = _Listing(offered, now + self._settings.mcp.list_ttl_s)
        return offered

    async def tool(self, ctx: RequestContext, offered_name: str, deadline: float) -> UpstreamTool | None:
        """The upstream tool a model knows as ``server__tool``; ``None`` when no server offers it."""
        server, sep, name = offered_name.partition(SEPARATOR)
        if not sep or await self.server(server) is None:
            return None
        return next((t for t in await self.tools(ctx, server, deadline) if t.name == name), None)

    # --- calls ---------------------------------------------------------------------------------

    async def call(self, ctx: RequestContext, tool: UpstreamTool, arguments: Mapping[str, Any], grants: Grants,
                   deadline: float) -> UpstreamResult:
        """Call ``tool`` with this caller's credential; the result redacted. Raises ``McpUnavailable``."""
        server = await self._known(tool.server)
        upstream = self._available(server)
        token = await self._token(ctx, server, required=True)
        redact = self._redactor(server, token)
        try:
            result = await upstream.call_tool(ctx, tool.name, arguments, token=token, grants=grants,
                                              deadline=deadline)
        except Exception as exc:  # the transport's and the SDK's errors: a tool error for the model
            raise McpUnavailable(redact(f"MCP server {tool.server!r} failed: {_message(exc)}")) from None
        return _redacted(result, redact)

    def secret_values(self) -> dict[str, str]:
        """Every configured secret value (for redacting what leaves the gateway)."""
        return dict(self._secrets)

    async def aclose(self) -> None:
        upstreams, self._upstreams = list(self._upstreams.values()), {}
        for _, upstream in upstreams:
            if upstream is not None:
                await upstream.aclose()

    # --- internals -----------------------------------------------------------------------------

    async def _known(self, name: str) -> McpServer:
        server = await self.server(name)
        if server is None:
            raise McpUnavailable(f"No MCP server is registered as {name!r}.")
        return server

    def _available(self, server: McpServer) -> Upstream:
        upstream = self._upstream(server)
        if upstream is None:
            raise McpUnavailable(f"MCP server {server.name!r} is not available.")
        return upstream

    def _upstream(self, server: McpServer) -> Upstream | None:
        held = self._upstreams.get(server.name)
        if held is not None and held[0] == server:
            return held[1]
        if held is not None and held[1] is not None:
            asyncio.get_running_loop().create_task(held[1].aclose())
        upstream = self._factory(server, self._scheduler, self._settings.tools)
        self._upstreams[server.name] = (server, upstream)
        return upstream

    async def _token(self, ctx: RequestContext, server: McpServer, *, required: bool) -> str | None:
        if server.credential == "none":
            return None
        if server.credential == "static":
            value = self._secrets.get(server.secret or "")
            if value is None:
                raise McpUnavailable(f"MCP server {server.name!r}: its secret {server.secret!r} is not in "
                                     "tools.secrets.")
            return value
        token = await self._credentials.token(_subject(ctx), server.name) if ctx.principal is not None else None
        if token is None and required:
            raise MissingCredential(f"MCP server {server.name!r} needs the caller's own credential, and none is "
                                    "stored for this caller.")
        return token

    def _redactor(self, server: McpServer, token: str | None) -> Redactor:
        secrets = dict(self._secrets)
        if token is not None:
            secrets[TOKEN_SECRET] = token
        return Redactor(secrets)

    async def _refreshed(self) -> None:
        if not self._store_used or self._store is None or time.monotonic() - self._loaded_at < REFRESH_S:
            return
        async with self._refresh:
            if time.monotonic() - self._loaded_at < REFRESH_S:
                return
            servers = {s.name: s for s in await self._store.list()}
            for gone in set(self._runtime) - set(servers):
                await self._forget(gone)
            self._runtime, self._loaded_at = servers, time.monotonic()

    async def _forget(self, name: str) -> None:
        self._listings = {k: v for k, v in self._listings.items() if k[0] != name}
        held = self._upstreams.pop(name, None)
        if held is not None and held[1] is not None:
            await held[1].aclose()


def _subject(ctx: RequestContext) -> str:
    p = ctx.principal
    return subject_id(p.tenant, p.key_id, p.claims) if p is not None else ""


def _plain_secrets(secrets: Mapping[str, str | SecretSpec]) -> dict[str, str]:
    return {name: s if isinstance(s, str) else s.get_secret_value() for name, s in secrets.items()}


def _redacted(result: UpstreamResult, redact: Redactor) -> UpstreamResult:
    """Every string of the result redacted, wherever it sits (an embedded resource's text, a link's
    title, structured content at any depth)."""
    content = tuple(_deep(block, redact) for block in result.content)
    structured = _deep(result.structured, redact) if result.structured is not None else None
    return replace(result, content=content, structured=structured)


def _deep(value: Any, redact: Redactor) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, Mapping):
        return {key: _deep(item, redact) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_deep(item, redact) for item in value]
    return value


def _message(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:300] or type(exc).__name__
