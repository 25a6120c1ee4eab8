"""Run one step's server-side tool calls: authorize each, place and run the allowed ones, and turn
every outcome (result, denial, bad arguments, refused job) into a ``tool`` message plus a trace.

Calls of a step run concurrently. With a workspace (``llmops.workspace``) every call of the request
is pinned to the node that holds it (co-scheduling). Node failures that cannot be retried, no
eligible node and deadlines are errors for the client (``UpstreamError`` family), not tool messages.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field, replace
from typing import Any

from executors.errors import JobRejected
from executors.spec import Grants, Job, Result
from gateway.kernel.context import RequestContext
from gateway.kernel.errors import GatewayError
from gateway.kernel.mcp import UpstreamResult, UpstreamTool
from middleware.tools.authorize import ToolAuthorizer, Verdict
from middleware.tools.code import VIA, InnerCalls
from middleware.tools.jobs import BadArguments, build_job, dataset_of, job_id, job_tenant, parse_arguments
from middleware.tools.mcp.registry import McpRegistry, McpUnavailable
from middleware.tools.offer import Offer
from middleware.tools.options import LoopOptions
from middleware.tools.trace import CallTrace
from routers.scheduler import JobRefused, NoEligibleNode, Placement, Scheduler


@dataclass(slots=True)
class CallState:
    """Per-request state shared by the steps: deadline and the node holding the workspace."""

    ctx: RequestContext
    offer: Offer
    options: LoopOptions
    deadline: float  # time.monotonic()
    workspace_node: str | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


@dataclass(slots=True)
class Prepared:
    call: dict[str, Any]
    trace: CallTrace
    job: Job | None = None
    placement: Placement | None = None
    idempotent: bool = False
    content: str = ""
    upstream: tuple[UpstreamTool, dict[str, Any], Grants] | None = None  # a call to an upstream MCP server
    result: UpstreamResult | None = None  # what that server answered


class ToolCalls:
    def __init__(self, authorizer: ToolAuthorizer, scheduler: Scheduler | None, mcp: McpRegistry | None = None) -> None:
        self._authorizer = authorizer
        self._scheduler = scheduler
        self._mcp = mcp

    async def run_step(self, state: CallState, step: int, calls: list[dict[str, Any]]) -> list[Prepared]:
        prepared = await asyncio.gather(
            *(self._prepare(state, c, job_id(state.ctx.request_id, step, i)) for i, c in enumerate(calls)))
        try:
            async with asyncio.TaskGroup() as group:
                for p in prepared:
                    if p.job is not None:
                        group.create_task(self._execute(state, p))
                    elif p.upstream is not None:
                        group.create_task(self._call_upstream(state, p))
        except* GatewayError as errors:
            raise errors.exceptions[0] from None
        return list(prepared)

    async def _prepare(self, state: CallState, call: dict[str, Any], wid: str, via: str | None = None) -> Prepared:
        fn = call.get("function") or {}
        name = str(fn.get("name", ""))
        p = Prepared(call, CallTrace(str(call.get("id", "")), name))
        entry = state.offer.server[name]
        try:
            args = parse_arguments(fn.get("arguments"))
            verdict = await self._authorizer.authorize(state.ctx, entry, args, via=via)
            if not verdict.allow:
                return _denied(p, verdict)
            if entry.upstream is not None:  # an upstream MCP server's tool: no job, no node
                p.trace.decision_id = verdict.decision_id or None
                p.upstream = (entry.upstream, args, verdict.grants)
                return p
            p.job = build_job(entry, args, verdict.grants, job_id=wid, workspace=state.options.workspace,
                              tenant=job_tenant(state.ctx))
        except (BadArguments, JobRejected) as exc:
            return _failed(p, f"invalid call: {exc}")
        p.trace.decision_id = verdict.decision_id or None
        p.idempotent = entry.idempotent
        p.placement = Placement(
            p.job.runtime, _tenant(state.ctx), entry.options.driver, entry.options.labels, verdict.regions,
            dataset_of(entry, args), data_region(state), batch=state.options.batch,
        )
        return p

    async def _execute(self, state: CallState, p: Prepared) -> None:
        assert p.job is not None and p.placement is not None
        if self._scheduler is None:
            raise NoEligibleNode("No tool nodes are configured (tools.node_secret or tools.nodes).")
        placement = await self._pinned(state, p.placement)
        started = time.perf_counter()
        try:
            dispatch = await self._scheduler.run(p.job, placement, idempotent=p.idempotent, deadline=state.deadline,
                                                 answer=self._inner(state, p) if p.job.runtime == "code" else None)
        except JobRefused as exc:
            _failed(p, exc.message)
            p.trace.duration_ms = _ms(started)
            return
        p.trace.node, p.trace.attempts = dispatch.node.id, dispatch.attempts
        p.trace.queued_ms = round(dispatch.queued_ms, 2)
        _finished(p, dispatch.result, _ms(started))

    def _inner(self, state: CallState, p: Prepared) -> InnerCalls:
        """Code mode: each call of the job's script is prepared and run as a call of the model's would be."""
        assert p.job is not None
        parent = p.job.id

        async def run_one(call: dict[str, Any], n: str) -> tuple[str, CallTrace]:
            inner = await self._prepare(state, call, f"{parent}-i{n}", via=VIA)
            if inner.job is not None:
                await self._execute(state, inner)
            elif inner.upstream is not None:
                await self._call_upstream(state, inner)
            return inner.content, inner.trace

        return InnerCalls(run_one, state.offer.server, p.trace)

    async def _call_upstream(self, state: CallState, p: Prepared) -> None:
        assert p.upstream is not None
        tool, args, grants = p.upstream
        started = time.perf_counter()
        try:
            if self._mcp is None:
                raise McpUnavailable("No MCP servers are configured.")
            p.result = await self._mcp.call(state.ctx, tool, args, grants, state.deadline)
        except McpUnavailable as exc:
            _failed(p, str(exc))
            p.trace.duration_ms = _ms(started)
            return
        p.content = p.result.text()
        p.trace.node, p.trace.driver, p.trace.duration_ms = p.result.node, p.result.driver, _ms(started)
        p.trace.status = "error" if p.result.is_error else "ok"

    async def _pinned(self, state: CallState, placement: Placement) -> Placement:
        if state.options.workspace is None or self._scheduler is None:
            return placement
        async with state.lock:  # the first call of the request chooses the workspace's node
            if state.workspace_node is None:
                state.workspace_node = (await self._scheduler.choose(placement)).id
        return replace(placement, pin=state.workspace_node)


def tool_content(result: Result) -> str:
    """What the model reads: stdout on a clean exit, else exit code, limit, stdout and stderr."""
    if result.exit_code == 0 and not result.stderr.strip() and not (result.timed_out or result.limit):
        return result.stdout
    head = f"exit code {result.exit_code}"
    if result.timed_out or result.limit:
        head += f" (stopped: {'wall-clock' if result.timed_out else result.limit} limit)"
    return f"{head}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"


def _finished(p: Prepared, result: Result, ms: float) -> None:
    p.content = tool_content(result)
    p.trace.driver, p.trace.exit_code, p.trace.duration_ms = result.driver, result.exit_code, ms
    p.trace.status = "ok" if result.exit_code == 0 else "error"


def _denied(p: Prepared, verdict: Verdict) -> Prepared:
    reason = "; ".join(verdict.reasons) or "denied by policy"
    p.trace.status, p.trace.reason, p.trace.decision_id = "denied", reason, verdict.decision_id or None
    p.content = f"error: the tool call was denied by policy and not run: {reason}"
    return p


def _failed(p: Prepared, reason: str) -> Prepared:
    p.trace.status, p.trace.reason = "error", reason
    p.content = f"error: {reason}"
    return p


def _tenant(ctx: RequestContext) -> str:
    return ctx.principal.tenant if ctx.principal is not None else ""


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)


def data_region(state: CallState) -> str | None:
    """The region to run near: the client's hint, else where the request's vector stores live."""
    if state.options.data_region:
        return state.options.data_region
    regions = state.ctx.hints.data_regions
    return regions[0] if regions else None
