"""The "tools" chain stage (last before the router): runs the agent loop for server-side tools.

A request with no server-side tool (see ``offer.py``) passes through untouched. Otherwise the stage
rewrites ``tools`` to the full definitions and calls the rest of the chain once per model step
(non-stream), returning the final answer with a trace. Loop limits come from ``ctx.extension``.
"""

from __future__ import annotations

import time

from gateway.kernel.chain import Handler
from gateway.kernel.config import Settings
from gateway.kernel.context import Reply, RequestContext
from gateway.kernel.errors import InvalidRequest
from gateway.services.bundle import Services
from middleware.tools.authorize import ToolAuthorizer
from middleware.tools.calls import CallState, ToolCalls
from middleware.tools.catalog import ToolCatalog
from middleware.tools.loop import AgentLoop, LoopRun
from middleware.tools.offer import make_offer, unknown_extension_tools
from middleware.tools.options import loop_options
from middleware.tools.pricing import price_of

_NOT_FORWARDED = ("stream", "stream_options")


class ToolsStage:
    name = "tools"

    def __init__(self, settings: Settings, catalog: ToolCatalog, loop: AgentLoop) -> None:
        self._settings = settings
        self._catalog = catalog
        self._loop = loop

    async def __call__(self, ctx: RequestContext, call_next: Handler) -> Reply:
        if ctx.route != "chat":
            return await call_next(ctx)
        tools = ctx.body.get("tools")
        offer = make_offer(tools, self._catalog)
        if offer is None:
            unknown = unknown_extension_tools(tools, self._catalog)
            if unknown:
                raise InvalidRequest(f"Unknown server-side tool {unknown[0]!r}.", param="tools")
            return await call_next(ctx)
        if (ctx.body.get("n") or 1) != 1:
            raise InvalidRequest("Server-side tools need n = 1.", param="n")
        options = loop_options(ctx.extension, self._settings.tools)
        state = CallState(ctx, offer, options, time.monotonic() + options.max_time_s)
        base = {k: v for k, v in ctx.body.items() if k not in _NOT_FORWARDED}
        base["tools"] = offer.tools
        run = LoopRun(state, base, price_of(self._settings, ctx.model), list(ctx.body.get("messages") or []))
        include_usage = bool((ctx.body.get("stream_options") or {}).get("include_usage"))
        wants_stream, ctx.stream = ctx.stream, False
        return await self._loop.run(run, call_next, wants_stream, include_usage)


def build(services: Services) -> ToolsStage:
    tools = services.settings.tools
    authorizer = ToolAuthorizer(services.tool_gate, tools.secrets, unguarded=tools.allow_without_policy)
    calls = ToolCalls(authorizer, services.scheduler)
    return ToolsStage(services.settings, ToolCatalog.from_settings(tools), AgentLoop(calls, tools.steps_header))
