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
from middleware.tools.code import for_offer
from middleware.tools.offer import Offer, flat_server_name
from middleware.tools.response_events import response_stream


@dataclass(frozen=True, slots=True)
class ResponsesPlan:
    body: dict[str, Any]  # the Responses request, server-side tools as their function definitions
    chat: dict[str, Any]  # the same as a chat request, not streamed
    offer: Offer
    search: FileSearch | None  # what the rag stage found for a ``file_search`` tool


def plan(ctx: RequestContext, catalog: ToolCatalog) -> ResponsesPlan | None:
    """``None`` when the request offers no server-side tool."""
    body = ctx.body
    server: dict[str, ToolEntry] = {}
    tools: list[Any] = []
    asked = list(body.get("tools") or ())
    names = [flat_server_name(tool, catalog) for tool in asked]
    offered = [e for e in (catalog.get(n) for n in names if n is not None) if e is not None]
    for tool, name in zip(asked, names, strict=True):
        entry = catalog.get(name) if name is not None else None
        if entry is None:
            tools.append(tool)
        elif entry.name not in server:
            server[entry.name] = entry
            tools.append(function_tool(for_offer(entry, offered)))
    if not server:
        return None
    echoed = {**body, "tools": tools}
    chat = chat_request(echoed, stream=False)
    return ResponsesPlan(echoed, chat, Offer(server, list(chat.get("tools") or ())), served_search(ctx))


def function_tool(entry: ToolEntry) -> dict[str, Any]:
    """A registered tool as a Responses function tool."""
    fn = entry.spec.openai_schema()["function"]
    return {"type": "function", "name": fn["name"], "description": fn["description"], "parameters": fn["parameters"]}


def answer(ctx: RequestContext, planned: ResponsesPlan, reply: Reply, steps: list[Any]) -> Reply:
    """The loop's reply (a chat completion or its SSE) as a Response or Responses events; errors as they are."""
    if reply.status != 200:
        return reply
    shown = server_items(steps)
    if reply.stream is not None:
        stream = response_stream(ctx, planned.body, reply.stream, shown, planned.search)
        return Reply(stream=stream, media_type="text/event-stream", headers=reply.headers)
    completion = orjson.loads(reply.body)
    response = from_completion(planned.body, completion, ctx.get(IDENTITY))
    response["output"] = [*shown, *response["output"]]
    if "llmops" in completion:
        response["llmops"] = completion["llmops"]
    if planned.search is not None:
        cite_response(response, planned.search)
    record(ctx, response)
    return Reply(body=orjson.dumps(response), headers=reply.headers)


def server_items(steps: list[Any]) -> list[dict[str, Any]]:
    """The messages the loop added (each tool step: the model's message, then one ``tool`` message per call)."""
    items: list[dict[str, Any]] = []
    for message in steps:
        if message.get("role") == "assistant":
            items += output_items(message, "completed")
        elif message.get("role") == "tool":
            items.append({"id": new_id("fco_"), "type": "function_call_output", "call_id": message["tool_call_id"],
                          "output": message["content"], "status": "completed"})
    return items
