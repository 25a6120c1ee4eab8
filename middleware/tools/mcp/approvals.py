"""``mcp_approval_response`` items on ``POST /v1/responses``: approved calls run before the model's first step.

A request continuing a Response that asked for approval (``previous_response_id``) carries the
``mcp_approval_request`` in its history and the caller's ``mcp_approval_response`` in its input. Each
approved request not yet answered by an ``mcp_call`` runs now, through ``ToolCalls`` (so the policy still
decides it), and its ``mcp_call`` item (with ``approval_request_id``) is placed right after the response
in the input: the model reads the call and its output; its trace is step 0 of the loop's trace. A refused
one never runs (the model reads that it was not approved: ``responses_request.chat_messages``). The tool
must be offered again by the request.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gateway.kernel.context import RequestContext
from middleware.tools.calls import CallState, ToolCalls
from middleware.tools.catalog import ToolEntry
from middleware.tools.mcp.items import McpNames, call_item
from middleware.tools.offer import Offer
from middleware.tools.options import LoopOptions
from middleware.tools.trace import CallTrace


@dataclass(slots=True)
class Approved:
    input: list[Any]  # the input, each approved call's ``mcp_call`` after its approval response
    calls: list[dict[str, Any]] = field(default_factory=list)  # those ``mcp_call`` items
    traces: list[CallTrace] = field(default_factory=list)  # and their traces (the loop's step 0)


async def run_approved(ctx: RequestContext, items: list[Any], names: McpNames, entries: dict[str, ToolEntry],
                       calls: ToolCalls, options: LoopOptions, deadline: float) -> Approved:
    asked = {str(i.get("id")): i for i in items if _kind(i) == "mcp_approval_request"}
    answered = {str(i.get("approval_request_id")) for i in items if _kind(i) == "mcp_call"}
    out = Approved([])
    for item in items:
        out.input.append(item)
        request_id = str(item.get("approval_request_id")) if _kind(item) == "mcp_approval_response" else ""
        if not request_id or item.get("approve") is not True or request_id not in asked or request_id in answered:
            continue
        call, trace = await _run(ctx, asked[request_id], names, entries, calls, options, deadline)
        out.input.append(call)
        out.calls.append(call)
        out.traces.append(trace)
        answered.add(request_id)
    return out


async def _run(ctx: RequestContext, request: dict[str, Any], names: McpNames, entries: dict[str, ToolEntry],
               calls: ToolCalls, options: LoopOptions, deadline: float) -> tuple[dict[str, Any], CallTrace]:
    label, name, arguments = str(request.get("server_label")), str(request.get("name")), request.get("arguments")
    request_id = str(request.get("id"))
    offered = names.offered(label, name)
    entry = entries.get(offered) if offered is not None else None
    if entry is None:
        trace = CallTrace(request_id, f"{label}__{name}", "error", reason="not offered by this request")
        why = f"error: {name!r} of MCP server {label!r} is not among this request's tools"
        return call_item(label, name, str(arguments or ""), why, trace, request_id), trace
    state = CallState(ctx, Offer({entry.name: entry}, []), options, deadline)
    call = {"id": request_id, "type": "function", "function": {"name": entry.name, "arguments": arguments or "{}"}}
    (done,) = await calls.run_step(state, 0, [call])
    return call_item(label, name, str(arguments or ""), done.content, done.trace, request_id), done.trace


def _kind(item: Any) -> str:
    return str(item.get("type", "message")) if isinstance(item, dict) else ""
