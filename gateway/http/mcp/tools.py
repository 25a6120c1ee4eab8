"""``tools/list`` and ``tools/call`` of the gateway's MCP server, over ``middleware.tools.direct``.

The caller is the principal the front door authenticated (put in the ASGI scope under ``CALLER``).
``tools/list`` is the catalog filtered by the policy for that caller. ``tools/call`` is authorized and
scheduled like a call of the agent loop; it answers:

=========================================  ===========================================================
outcome                                    MCP reply
=========================================  ===========================================================
ran, exit code 0                           result: text content (stdout), ``_meta.llmops.trace``
ran and failed, bad arguments, or denied   result with ``isError``: the text a model would read (a
by the policy                              denial names the policy's reasons), and the trace
unknown tool, bad ``_meta.llmops``         JSON-RPC error ``-32602`` (invalid params)
no node could run it (none live, queue     JSON-RPC error ``-32603`` with ``data`` {status, code}: as
full, deadline)                            the agent loop, an error for the client, not a tool result
=========================================  ===========================================================

A call's ``_meta.llmops`` takes the options of the request extension (``workspace``, ``max_time_s``,
``priority``, ``data_region``). With a progress token the client gets ``notifications/progress``: one
when the call starts, one every ``PROGRESS_EVERY_S`` while it runs (the seconds elapsed), one at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Mapping
from typing import Any

from mcp.server.context import ServerRequestContext
from mcp.shared.exceptions import MCPError
from mcp_types import (
    INTERNAL_ERROR,
    INVALID_PARAMS,
    CallToolRequestParams,
    CallToolResult,
    ListToolsResult,
    PaginatedRequestParams,
    TextContent,
    Tool,
)
from starlette.requests import Request
from starlette.types import Scope

from gateway.kernel.context import RequestContext
from gateway.kernel.errors import GatewayError, InvalidRequest
from gateway.kernel.extension import FIELD, NONE, Extension, parse_extension
from gateway.kernel.observability.exchange import exchange_of
from middleware.tools.catalog import ToolEntry
from middleware.tools.direct import DirectTools, Outcome, UnknownTool
from middleware.tools.trace import call_json

CALLER = "llmops.mcp.caller"  # ASGI scope key: the door's Principal (None when authn is off)
PROGRESS_EVERY_S = 2.0
McpContext = ServerRequestContext[Any, Any]


class McpTools:
    def __init__(self, tools: DirectTools) -> None:
        self._tools = tools

    def input_schema(self, name: str) -> Mapping[str, Any] | None:
        """For the SDK's check of ``Mcp-Param-*`` headers (2026-07-28): a registered tool's schema, without
        running ``tools/list`` (a policy decision per tool) before every call."""
        return self._tools.input_schema(name)

    async def list_tools(self, ctx: McpContext, params: PaginatedRequestParams | None) -> ListToolsResult:
        entries = await self._tools.visible(tool_context(ctx, NONE))
        return ListToolsResult(tools=[_tool(e) for e in entries])

    async def call_tool(self, ctx: McpContext, params: CallToolRequestParams) -> CallToolResult:
        call = tool_context(ctx, _extension(params.meta))
        progress = Progress(ctx)
        await progress.send(f"{params.name}: started")
        ticker = asyncio.create_task(progress.every(PROGRESS_EVERY_S))
        try:
            outcome = await self._run(ctx, call, params)
        except MCPError as err:
            await _stopped(ticker)
            await progress.send(f"{params.name}: failed: {err.message}", last=True)
            raise
        finally:
            await _stopped(ticker)  # also when the client went away and the call was cancelled
        await progress.send(f"{params.name}: {outcome.trace.status}", last=True)
        return CallToolResult(content=[TextContent(text=outcome.content)], is_error=outcome.failed,
                              meta={FIELD: {"trace": call_json(outcome.trace)}})

    async def _run(self, ctx: McpContext, call: RequestContext, params: CallToolRequestParams) -> Outcome:
        try:
            return await self._tools.call(call, params.name, dict(params.arguments or {}))
        except UnknownTool:
            raise MCPError(INVALID_PARAMS, f"Unknown tool: {params.name}") from None
        except GatewayError as err:
            exchange_of(_scope(ctx)).error_code = err.code  # the access log names it
            raise MCPError(INTERNAL_ERROR, err.message, {"status": err.status, "code": err.code}) from None


class Progress:
    """``notifications/progress`` for one call, increasing; sent only when the client gave a token."""

    def __init__(self, ctx: McpContext) -> None:
        self._ctx = ctx
        self._started = time.monotonic()
        self._last: float | None = None

    async def send(self, message: str, *, last: bool = False) -> None:
        elapsed = round(time.monotonic() - self._started, 3)
        value = 0.0 if self._last is None else max(elapsed, self._last + 0.001)
        self._last = value
        await self._ctx.session.report_progress(value, value if last else None, message)

    async def every(self, interval_s: float) -> None:
        while True:
            await asyncio.sleep(interval_s)
            await self.send(f"running ({time.monotonic() - self._started:.0f} s)")


def tool_context(ctx: McpContext, extension: Extension) -> RequestContext:
    """The call as the tool authorizer sees it: the door's caller and request id, no model.

    Its ``route`` is never read: this context does not enter the chain, and the policy document of a
    tool call does not carry the route."""
    scope = _scope(ctx)
    return RequestContext(exchange_of(scope).request_id, "chat", "", {}, {}, principal=scope[CALLER],
                          extension=extension)


def _scope(ctx: McpContext) -> Scope:
    """The HTTP request's ASGI scope, which the front door entered (the SDK hands the request on)."""
    request = ctx.request
    if not isinstance(request, Request) or CALLER not in request.scope:
        raise MCPError(INTERNAL_ERROR, "The call did not come through the gateway's front door.")
    return request.scope


def _extension(meta: Mapping[str, Any] | None) -> Extension:
    raw = (meta or {}).get(FIELD)
    if raw is None:
        return NONE
    try:
        return parse_extension({FIELD: raw})
    except InvalidRequest as err:
        raise MCPError(INVALID_PARAMS, err.message, {"param": f"_meta.{err.param}"}) from None


def _tool(entry: ToolEntry) -> Tool:
    return Tool(name=entry.name, description=entry.spec.description, input_schema=dict(entry.spec.parameters))


async def _stopped(task: asyncio.Task[None]) -> None:
    """Stop the ticker; a progress notification that could not be sent does not fail the call."""
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await task
