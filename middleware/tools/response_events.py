"""The agent loop's chat SSE as Responses events, for a ``POST /v1/responses`` stream with server-side tools.

The loop's stream (its final step relayed as it arrives, or SSE built from its answer) goes through the
chat → Responses stream translator. The items of the steps that ran tools come first in the Response:
they are sent whole (``output_item.added`` and ``.done``) right after ``response.in_progress``, the
answer's items are numbered after them, and the terminal event's Response lists them all, with the
loop's trace (``llmops``, from the last choice chunk). The rag stage's file search shows as on the
router's adapter (``CitedEvents``: its item first, citations on the answer). The final Response is
recorded (``RESPONSE``, usage) before its event goes out, as the adapter does, so the endpoint keeps it.

Upstream MCP items carry their own events between ``added`` and ``done``: ``response.mcp_list_tools
.in_progress``/``.completed``, and ``response.mcp_call.in_progress``, ``response.mcp_call_arguments.done``,
``response.mcp_call.completed`` (or ``.failed``). A handed-back call of a tool that needs approval goes out
as its ``mcp_approval_request`` item (no argument deltas).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

from gateway.kernel.context import ReplyStream, RequestContext
from gateway.kernel.responses import IDENTITY, FileSearch
from gateway.kernel.sse import sse_events
from gateway.services.responses_wire.responses_citations import CitedEvents
from gateway.services.responses_wire.responses_object import TERMINAL
from gateway.services.responses_wire.responses_stream import ChatStreamTranslator
from gateway.services.responses_wire.served import frame_events
from middleware.tools.mcp.items import McpNames, as_approval

Event = dict[str, Any]


async def response_stream(ctx: RequestContext, body: dict[str, Any], chunks: ReplyStream,
                          shown: list[dict[str, Any]], search: FileSearch | None,
                          mcp: McpNames | None = None) -> AsyncGenerator[bytes, None]:
    """Numbered, framed events; one write per chat event."""
    translator, items = ChatStreamTranslator(body, ctx.get(IDENTITY)), _Prior(shown, mcp or McpNames())
    cite = CitedEvents(search) if search is not None else None
    seq = 0

    def out(events: list[Event]) -> bytes:
        nonlocal seq
        placed = items.place(events)
        frames, seq = frame_events(ctx, cite(placed) if cite is not None else placed, seq)
        return frames

    try:
        async for _, doc in sse_events(chunks):
            if doc is None:
                continue
            items.note(doc)
            frames = out(translator.feed(doc))
            if frames:
                yield frames
            if translator.done:
                return
        frames = out(translator.finish())
        if frames:
            yield frames
    finally:
        await chunks.aclose()


class _Prior:
    """The tool steps' items, placed before the answer's."""

    __slots__ = ("approvals", "items", "mcp", "trace")

    def __init__(self, items: list[dict[str, Any]], mcp: McpNames) -> None:
        self.items = items
        self.trace: Any = None
        self.mcp = mcp
        self.approvals: set[str] = set()  # ids of the answer's items that became approval requests

    def note(self, chunk: dict[str, Any]) -> None:
        if "llmops" in chunk:
            self.trace = chunk["llmops"]

    def place(self, events: list[Event]) -> list[Event]:
        out: list[Event] = []
        for event in events:
            if "output_index" in event:
                event["output_index"] += len(self.items)
            if self.mcp.approval and not self._approval(event):
                continue
            out.append(event)
            if event["type"] == "response.in_progress":
                out += self._sent()
            elif event["type"] in TERMINAL:
                self._finish(event["response"])
        return out

    def _approval(self, event: Event) -> bool:
        """Rewrites an event of a call that needs approval; False for its argument deltas (dropped)."""
        item = event.get("item")
        if isinstance(item, dict) and item.get("type") == "function_call" and item.get("name") in self.mcp.approval:
            self.approvals.add(str(item.get("id")))
            event["item"] = as_approval(item, self.mcp)
        return not (event["type"].startswith("response.function_call_arguments.")
                    and event.get("item_id") in self.approvals)

    def _sent(self) -> list[Event]:
        events: list[Event] = []
        for index, item in enumerate(self.items):
            added = {**item, "status": "in_progress"} if "status" in item else item
            if item["type"] == "mcp_call":
                added = {**added, "output": None, "error": None}
            events.append({"type": "response.output_item.added", "output_index": index, "item": added})
            events += _mcp_events(item, index)
            events.append({"type": "response.output_item.done", "output_index": index, "item": item})
        return events

    def _finish(self, response: dict[str, Any]) -> None:
        output = [as_approval(item, self.mcp) for item in response["output"]]
        response["output"] = [*self.items, *output]
        if self.trace is not None:
            response["llmops"] = self.trace


def _mcp_events(item: dict[str, Any], index: int) -> list[Event]:
    """The events of an upstream MCP item between its ``added`` and ``done``."""
    at = {"output_index": index, "item_id": item["id"]}
    if item["type"] == "mcp_list_tools":
        return [{"type": "response.mcp_list_tools.in_progress", **at},
                {"type": "response.mcp_list_tools.completed", **at}]
    if item["type"] == "mcp_call":
        ended = "completed" if item.get("status") == "completed" else "failed"
        return [{"type": "response.mcp_call.in_progress", **at},
                {"type": "response.mcp_call_arguments.done", **at, "arguments": item["arguments"]},
                {"type": f"response.mcp_call.{ended}", **at}]
    return []
