"""Responses API stream events: read them off an SSE body and hold each to its published schema."""

from __future__ import annotations

import json
from typing import Any

from tests.support.openapi import validate

EVENT_SCHEMAS = {
    "response.created": "ResponseCreatedEvent",
    "response.in_progress": "ResponseInProgressEvent",
    "response.output_item.added": "ResponseOutputItemAddedEvent",
    "response.output_item.done": "ResponseOutputItemDoneEvent",
    "response.content_part.added": "ResponseContentPartAddedEvent",
    "response.content_part.done": "ResponseContentPartDoneEvent",
    "response.output_text.delta": "ResponseTextDeltaEvent",
    "response.output_text.done": "ResponseTextDoneEvent",
    "response.output_text.annotation.added": "ResponseOutputTextAnnotationAddedEvent",
    "response.reasoning_text.delta": "ResponseReasoningTextDeltaEvent",
    "response.reasoning_text.done": "ResponseReasoningTextDoneEvent",
    "response.function_call_arguments.delta": "ResponseFunctionCallArgumentsDeltaEvent",
    "response.function_call_arguments.done": "ResponseFunctionCallArgumentsDoneEvent",
    "response.file_search_call.in_progress": "ResponseFileSearchCallInProgressEvent",
    "response.file_search_call.searching": "ResponseFileSearchCallSearchingEvent",
    "response.file_search_call.completed": "ResponseFileSearchCallCompletedEvent",
    "response.mcp_list_tools.in_progress": "ResponseMCPListToolsInProgressEvent",
    "response.mcp_list_tools.completed": "ResponseMCPListToolsCompletedEvent",
    "response.mcp_list_tools.failed": "ResponseMCPListToolsFailedEvent",
    "response.mcp_call.in_progress": "ResponseMCPCallInProgressEvent",
    "response.mcp_call_arguments.done": "ResponseMCPCallArgumentsDoneEvent",
    "response.mcp_call.completed": "ResponseMCPCallCompletedEvent",
    "response.mcp_call.failed": "ResponseMCPCallFailedEvent",
    "response.completed": "ResponseCompletedEvent",
    "response.incomplete": "ResponseIncompleteEvent",
    "response.failed": "ResponseFailedEvent",
    "error": "ResponseErrorEvent",
}


def sse_events(text: str) -> list[dict[str, Any]]:
    """The JSON of every ``data:`` line; an ``event:`` line, when present, must name the same type."""
    out: list[dict[str, Any]] = []
    for block in text.strip().split("\n\n"):
        name, data = None, None
        for line in block.split("\n"):
            if line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                data = json.loads(line[5:].strip())
        assert data is not None, block
        assert name is None or name == data["type"], (name, data["type"])
        out.append(data)
    return out


def validate_events(events: list[dict[str, Any]]) -> None:
    """Each event against its own schema and the ``ResponseStreamEvent`` union; numbered 0, 1, 2, ..."""
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    for event in events:
        validate(event, EVENT_SCHEMAS[event["type"]])
        validate(event, "ResponseStreamEvent")
        if "response" in event:
            validate(event["response"], "Response")


def types_of(events: list[dict[str, Any]]) -> list[str]:
    return [e["type"] for e in events]
