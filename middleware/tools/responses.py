"""The tools stage on ``POST /v1/responses``: the request as the agent loop's chat request, and the loop's
final answer as a Response.

A Responses tool is server-side when ``offer.flat_server_name`` says so. The model is offered it, and the
Response echoes it in ``tools``, as the function it is (its registered definition); everything else is
translated as for any chat backend (``gateway/services/responses_wire``).

The Response's ``output`` shows what the loop did, in order: for each step that ran tools, the model's
``function_call`` items then one ``function_call_output`` per call (what the model read: the tool's output,
or why it did not run); then the final answer (a message, or the client-side ``function_call`` items
handed back to the client). A call the gateway ran has its output beside it in the same ``output``; one
for the client has none. The loop's trace is the Response's ``llmops`` field, as on chat. With the rag
stage's file search, its ``file_search_call`` item comes first and the answer carries the citations.

Upstream MCP tools (``{"type": "mcp"}``, echoed as sent) show as OpenAI shows them (``mcp/items.py``): an
``mcp_list_tools`` item per server first, then (after calls approved by this request's
``mcp_approval_response`` items, run before the first step) one ``mcp_call`` item per call the loop made;
a call of a tool that needs approval ends the loop and is the ``mcp_approval_request`` it asks for.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from gateway.kernel.context import Reply, RequestContext
from gateway.kernel.responses import IDENTITY, FileSearch, new_id
from gateway.services.responses_wire.responses_citations import cite_response
from gateway.services.responses_wire.responses_object import from_completion, output_items
from gateway.services.responses_wire.responses_request import chat_request
from gateway.services.responses_wire.served import record, served_search
from middleware.tools.catalog import ToolCatalog, ToolEntry
from middleware.tools.code import CODE, for_offer
from middleware.tools.mcp.items import McpNames, as_approval, call_item, list_tools_item
from middleware.tools.mcp.offer import MCP_TYPE, McpRef, Resolved
from middleware.tools.offer import Offer, flat_server_name
from middleware.tools.response_events import response_stream
from middleware.tools.trace import CallTrace


@dataclass(frozen=True, slots=True)
class ResponsesPlan:
    body: dict[str, Any]  # the Responses request, server-side tools as their function definitions
    chat: dict[str, Any]  # the same as a chat request, not streamed
    offer: Offer
    search: FileSearch | None  # what the rag stage found for a ``file_search`` tool
    mcp: McpNames  # the upstream MCP tools of ``{"type": "mcp"}`` entries
    prior: list[dict[str, Any]]  # items before the loop's: mcp_list_tools, calls approved by this request


def plan(ctx: RequestContext, catalog: ToolCatalog, mcp: Resolved | None = None,
         approved: list[dict[str, Any]] | None = None) -> ResponsesPlan | None:
    """``None`` when the request offers no server-side tool."""
    body = ctx.body
    server: dict[str, ToolEntry] = {}
    tools: list[Any] = []  # what the model is offered
    echoed: list[Any] = []  # what the Response lists
    refs = iter(mcp.refs if mcp is not None else ())
    names = McpNames.of(mcp.refs) if mcp is not None else McpNames()
    for tool in body.get("tools") or ():
        if isinstance(tool, dict) and tool.get("type") == MCP_TYPE:
            echoed.append(tool)
            tools += _mcp_tools(next(refs), catalog, names, server)
            continue
        name = flat_server_name(tool, catalog)
        entry = catalog.get(name) if name is not None else None
        if entry is None:
            tools.append(tool)
            echoed.append(tool)
        elif entry.name not in server:
            server[entry.name] = entry
            tools.append(function_tool(entry))
            echoed.append(tools[-1])
    if not server and not names.labels:
        return None
    if CODE in server:
        described = function_tool(for_offer(server[CODE], server.values()))
        tools = [described if isinstance(t, dict) and t.get("name") == CODE else t for t in tools]
        echoed = [described if isinstance(t, dict) and t.get("name") == CODE else t for t in echoed]
    chat = chat_request({**body, "tools": tools}, stream=False)
    prior = [list_tools_item(ref) for ref in (mcp.refs if mcp is not None else ())] + (approved or [])
    return ResponsesPlan({**body, "tools": echoed}, chat, Offer(server, list(chat.get("tools") or ())),
                         served_search(ctx), names, prior)


def _mcp_tools(ref: McpRef, catalog: ToolCatalog, names: McpNames, server: dict[str, ToolEntry]) -> list[Any]:
    """A server's tools as the model's functions; those that need approval are not run by the loop."""
    tools: list[Any] = []
    for tool in ref.tools:
        entry = catalog.get(tool.offered_name)
        if entry is None:
            continue
        tools.append(function_tool(entry))
        if entry.name not in names.approval:
            server[entry.name] = entry
    return tools


def function_tool(entry: ToolEntry) -> dict[str, Any]:
    """A registered tool as a Responses function tool."""
    fn = entry.spec.openai_schema()["function"]
    return {"type": "function", "name": fn["name"], "description": fn["description"], "parameters": fn["parameters"]}


def answer(ctx: RequestContext, planned: ResponsesPlan, reply: Reply, steps: list[Any],
           traces: dict[str, CallTrace] | None = None) -> Reply:
    """The loop's reply (a chat completion or its SSE) as a Response or Responses events; errors as they are."""
    if reply.status != 200:
        return reply
    shown = [*planned.prior, *server_items(steps, planned.mcp, traces or {})]
    if reply.stream is not None:
        stream = response_stream(ctx, planned.body, reply.stream, shown, planned.search, planned.mcp)
        return Reply(stream=stream, media_type="text/event-stream", headers=reply.headers)
    completion = orjson.loads(reply.body)
    response = from_completion(planned.body, completion, ctx.get(IDENTITY))
    response["output"] = [*shown, *(as_approval(item, planned.mcp) for item in response["output"])]
    if "llmops" in completion:
        response["llmops"] = completion["llmops"]
    if planned.search is not None:
        cite_response(response, planned.search)
    record(ctx, response)
    return Reply(body=orjson.dumps(response), headers=reply.headers)


def server_items(steps: list[Any], mcp: McpNames | None = None,
                 traces: dict[str, CallTrace] | None = None) -> list[dict[str, Any]]:
    """The messages the loop added (each tool step: the model's message, then one ``tool`` message per call);
    a call of an upstream MCP tool as one ``mcp_call`` item, in the place of its output."""
    items: list[dict[str, Any]] = []
    labels = mcp.labels if mcp is not None else {}
    asked: dict[str, tuple[str, str]] = {}  # MCP call id -> (name offered, arguments)
    for message in steps:
        if message.get("role") == "assistant":
            for call in message.get("tool_calls") or ():
                fn = call.get("function") or {}
                if fn.get("name") in labels:
                    asked[str(call.get("id"))] = (fn["name"], str(fn.get("arguments") or ""))
            items += [i for i in output_items(message, "completed") if i.get("call_id") not in asked]
        elif message.get("role") == "tool" and message["tool_call_id"] in asked:
            offered, arguments = asked[message["tool_call_id"]]
            trace = (traces or {}).get(message["tool_call_id"]) or CallTrace(message["tool_call_id"], offered)
            items.append(call_item(*labels[offered], arguments, message["content"], trace))
        elif message.get("role") == "tool":
            items.append({"id": new_id("fco_"), "type": "function_call_output", "call_id": message["tool_call_id"],
                          "output": message["content"], "status": "completed"})
    return items
