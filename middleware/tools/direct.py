"""Tools called directly by a client (the gateway's MCP server), not by a model in the agent loop.

``visible`` is the catalog and the upstream MCP servers' tools (``server__tool``, as listed for this
caller) filtered for one caller: each tool is put to the policy as the tools stage
puts a call (action ``tool_call``, the caller's subject, no arguments: so the secrets and egress the
tool declares), and the answer is cached per key for ``policy.cache_ttl_s``. ``call`` runs one call
through ``ToolCalls`` exactly as the agent loop runs each call of a step: authorized with the call's
arguments, secrets, egress and workspace, placed and scheduled onto a node (or sent to its upstream MCP
server), its outcome traced. A ``code`` call's script may call every registered tool and every upstream
tool listed for this caller, each call decided by the policy for this caller.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gateway.kernel.config.sections.tools import ToolsSettings
from gateway.kernel.context import RequestContext
from gateway.kernel.errors import UpstreamError
from gateway.services.bundle import Services
from middleware.tools.authorize import ToolAuthorizer
from middleware.tools.calls import CallState, ToolCalls
from middleware.tools.catalog import ToolCatalog, ToolEntry, mcp_entry
from middleware.tools.code import CODE
from middleware.tools.mcp.registry import McpRegistry, McpUnavailable
from middleware.tools.mcp.shared import registry_of
from middleware.tools.offer import Offer
from middleware.tools.options import loop_options
from middleware.tools.trace import CallTrace

_MAX_CACHED_KEYS = 10_000


class UnknownTool(LookupError):
    """No tool of this name is registered."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a call came to: the text a model would read, and its trace (status ``ok``, ``error``, ``denied``)."""

    content: str
    trace: CallTrace

    @property
    def failed(self) -> bool:
        return self.trace.status != "ok"


class DirectTools:
    def __init__(self, catalog: ToolCatalog, authorizer: ToolAuthorizer, calls: ToolCalls, settings: ToolsSettings,
                 cache_ttl_s: float, mcp: McpRegistry | None = None) -> None:
        self._catalog = catalog
        self._mcp = mcp
        self._authorizer = authorizer
        self._calls = calls
        self._settings = settings
        self._ttl_s = cache_ttl_s
        self._visible: dict[str, tuple[float, tuple[ToolEntry, ...]]] = {}

    async def visible(self, ctx: RequestContext) -> tuple[ToolEntry, ...]:
        """The tools this caller may use, by name; cached per key."""
        key = ctx.principal.key_id if ctx.principal is not None else ""
        now = time.monotonic()
        cached = self._visible.get(key)
        if cached is not None and cached[0] > now:
            return cached[1]
        found: list[ToolEntry] = []
        entries = [self._catalog.get(name) for name in self._catalog.names()] + await self._upstream(ctx)
        for entry in entries:
            if entry is not None and (await self._authorizer.authorize(ctx, entry, {})).allow:
                found.append(entry)
        if self._ttl_s > 0:
            if len(self._visible) > _MAX_CACHED_KEYS:
                self._visible.clear()
            self._visible[key] = (now + self._ttl_s, tuple(found))
        return tuple(found)

    def input_schema(self, name: str) -> Mapping[str, Any] | None:
        """A registered tool's parameters schema, looked up without a caller; None for any other name (an
        upstream tool's schema is the caller's listing's, and it is checked when the call is made)."""
        entry = self._catalog.get(name)
        return entry.spec.parameters if entry is not None else None

    async def call(self, ctx: RequestContext, name: str, arguments: dict[str, Any]) -> Outcome:
        """Run one call; raises ``UnknownTool``, and ``GatewayError`` when no node can run it (as the loop)."""
        entry = self._catalog.get(name) or await self._upstream_tool(ctx, name)
        if entry is None:
            raise UnknownTool(name)
        options = loop_options(ctx.extension, self._settings)
        offer = Offer(await self._offered(ctx, entry), [])
        state = CallState(ctx, offer, options, time.monotonic() + options.max_time_s)
        call = {"id": ctx.request_id, "type": "function", "function": {"name": name, "arguments": arguments}}
        (done,) = await self._calls.run_step(state, 0, [call])
        return Outcome(done.content, done.trace)

    async def _offered(self, ctx: RequestContext, entry: ToolEntry) -> dict[str, ToolEntry]:
        """The tool called; for ``code`` every registered and upstream tool (its script's calls are each
        authorized)."""
        if entry.name != CODE:
            return {entry.name: entry}
        found = [self._catalog.get(n) for n in self._catalog.names()] + await self._upstream(ctx)
        return {e.name: e for e in found if e is not None}

    async def _upstream(self, ctx: RequestContext) -> list[ToolEntry]:
        """Every upstream MCP server's tools for this caller, listed side by side; a server that cannot list
        them (in ``mcp.list_timeout_s``) is left out."""
        if self._mcp is None:
            return []
        deadline = time.monotonic() + self._settings.max_time_s
        servers = await self._mcp.servers()
        listed = await asyncio.gather(*(self._mcp.tools(ctx, name, deadline) for name in servers),
                                      return_exceptions=True)
        entries: list[ToolEntry] = []
        for server, tools in zip(servers.values(), listed, strict=True):
            if isinstance(tools, McpUnavailable):
                continue
            if isinstance(tools, BaseException):
                raise tools
            entries += [mcp_entry(server, t) for t in tools]
        return entries

    async def _upstream_tool(self, ctx: RequestContext, name: str) -> ToolEntry | None:
        if self._mcp is None:
            return None
        try:
            tool = await self._mcp.tool(ctx, name, time.monotonic() + self._settings.max_time_s)
            server = await self._mcp.server(tool.server) if tool is not None else None
        except McpUnavailable as exc:
            raise UpstreamError(str(exc), code="mcp_server_unavailable") from None
        return mcp_entry(server, tool) if tool is not None and server is not None else None


def build(services: Services) -> DirectTools:
    """The same authorizer and calls the tools stage builds (``middleware/tools/stage.py``)."""
    tools = services.settings.tools
    authorizer = ToolAuthorizer(services.tool_gate, tools.secrets, unguarded=tools.allow_without_policy)
    mcp = registry_of(services)
    return DirectTools(ToolCatalog.from_settings(tools), authorizer, ToolCalls(authorizer, services.scheduler, mcp),
                       tools, services.settings.policy.cache_ttl_s, mcp)
