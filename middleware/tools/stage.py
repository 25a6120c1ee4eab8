"""The "tools" chain stage (last before the router): runs the agent loop for server-side tools.

A request with no server-side tool (see ``offer.py``) passes through untouched. Otherwise the stage
rewrites ``tools`` to the full definitions and calls the rest of the chain once per model step
(non-stream), returning the final answer with a trace. Loop limits come from ``ctx.extension``.

Routes ``chat`` and ``responses``: a Responses request is run as its chat translation (the steps go to
the router on route ``chat``) and its answer comes back as a Response (``responses.py``).
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

from gateway.kernel.chain import Handler
from gateway.kernel.config import Settings
from gateway.kernel.context import Reply, RequestContext
from gateway.kernel.errors import InvalidRequest
from gateway.services.bundle import Services
from middleware.tools.authorize import ToolAuthorizer
from middleware.tools.calls import CallState, ToolCalls
from middleware.tools.catalog import ToolCatalog
from middleware.tools.loop import AgentLoop, LoopRun
from middleware.tools.mcp.approvals import Approved, run_approved
from middleware.tools.mcp.items import McpNames
from middleware.tools.mcp.offer import Resolved, resolve
from middleware.tools.mcp.registry import McpRegistry
from middleware.tools.mcp.shared import registry_of
from middleware.tools.offer import Offer, make_offer, unknown_extension_tools
from middleware.tools.options import loop_options
from middleware.tools.pricing import price_of
from middleware.tools.responses import answer, plan
from middleware.tools.trace import StepTrace

_NOT_FORWARDED = ("stream", "stream_options")


class ToolsStage:
    name = "tools"

    def __init__(self, settings: Settings, catalog: ToolCatalog, loop: AgentLoop,
                 mcp: McpRegistry | None = None, calls: ToolCalls | None = None) -> None:
        self._settings = settings
        self._catalog = catalog
        self._loop = loop
        self._mcp = mcp
        self._calls = calls

    async def __call__(self, ctx: RequestContext, call_next: Handler) -> Reply:
        if ctx.route == "responses":
            return await self._responses(ctx, call_next)
        if ctx.route != "chat":
            return await call_next(ctx)
        resolved = await self._resolve(ctx)
        catalog = self._catalog.with_entries(resolved.entries) if resolved is not None else self._catalog
        tools = resolved.tools if resolved is not None else ctx.body.get("tools")
        self._check_unknown(tools, catalog)
        offer = make_offer(tools, catalog)
        if offer is None:
            return await call_next(ctx)
        if (ctx.body.get("n") or 1) != 1:
            raise InvalidRequest("Server-side tools need n = 1.", param="n")
        base = {k: v for k, v in ctx.body.items() if k not in _NOT_FORWARDED}
        base["tools"] = offer.tools
        run = self._run(ctx, offer, base)
        include_usage = bool((ctx.body.get("stream_options") or {}).get("include_usage"))
        wants_stream, ctx.stream = ctx.stream, False
        return await self._loop.run(run, call_next, wants_stream, include_usage)

    async def _responses(self, ctx: RequestContext, call_next: Handler) -> Reply:
        resolved = await self._resolve(ctx)
        catalog = self._catalog.with_entries(resolved.entries) if resolved is not None else self._catalog
        self._check_unknown(resolved.tools if resolved is not None else ctx.body.get("tools"), catalog)
        approved = await self._approved(ctx, resolved)
        planned = plan(ctx, catalog, resolved, approved.calls if approved is not None else None)
        if planned is None:
            return await call_next(ctx)
        step = replace(ctx, route="chat", body=planned.chat, stream=False)
        run = self._run(step, planned.offer, planned.chat)
        if approved is not None and approved.traces:
            run.steps.append(StepTrace(0, 0.0, "approved", approved.traces))
        asked = len(run.messages)
        reply = await self._loop.run(run, call_next, ctx.stream, include_usage=True)
        ctx.usage, ctx.served_model, ctx.backend = step.usage, step.served_model, step.backend
        ctx.upstream_model = step.upstream_model
        traces = {c.id: c for s in run.steps for c in s.calls}
        return answer(ctx, planned, reply, run.messages[asked:], traces)

    async def _approved(self, ctx: RequestContext, resolved: Resolved | None) -> Approved | None:
        """Run the calls this request approves (``mcp/approvals.py``); the input then carries their items."""
        items = ctx.body.get("input")
        if resolved is None or not resolved.refs or not isinstance(items, list) or self._calls is None:
            return None
        options = loop_options(ctx.extension, self._settings.tools)
        done = await run_approved(ctx, items, McpNames.of(resolved.refs), resolved.entries, self._calls, options,
                                  time.monotonic() + options.max_time_s)
        ctx.body = {**ctx.body, "input": done.input}
        return done

    def _run(self, ctx: RequestContext, offer: Offer, base: dict[str, Any]) -> LoopRun:
        options = loop_options(ctx.extension, self._settings.tools)
        state = CallState(ctx, offer, options, time.monotonic() + options.max_time_s)
        messages = list(base.get("messages") or [])
        return LoopRun(state, base, price_of(self._settings, ctx.model), messages)

    async def _resolve(self, ctx: RequestContext) -> Resolved | None:
        """The request's upstream MCP tools (``middleware/tools/mcp/offer.py``), listed within the loop's time."""
        seconds = loop_options(ctx.extension, self._settings.tools).max_time_s
        return await resolve(ctx, ctx.body.get("tools"), self._mcp, time.monotonic() + seconds)

    def _check_unknown(self, tools: Any, catalog: ToolCatalog) -> None:
        unknown = unknown_extension_tools(tools, catalog)
        if unknown:
            raise InvalidRequest(f"Unknown server-side tool {unknown[0]!r}.", param="tools")


def build(services: Services) -> ToolsStage:
    tools = services.settings.tools
    authorizer = ToolAuthorizer(services.tool_gate, tools.secrets, unguarded=tools.allow_without_policy)
    mcp = registry_of(services)
    calls = ToolCalls(authorizer, services.scheduler, mcp)
    return ToolsStage(services.settings, ToolCatalog.from_settings(tools), AgentLoop(calls, tools.steps_header), mcp,
                      calls)
