"""What both producers of Responses answers share (the router's adapter, and the tools stage when it runs
the agent loop): the file search the rag stage served, recording the final Response for the endpoint,
and numbering and framing events."""

from __future__ import annotations

from typing import Any

import orjson

from gateway.kernel.context import RequestContext, Usage
from gateway.kernel.errors import UnsupportedCapability
from gateway.kernel.responses import FILE_SEARCH, RESPONSE, FileSearch
from gateway.services.responses_wire.responses_object import TERMINAL


def served_search(ctx: RequestContext) -> FileSearch | None:
    """What the rag stage found; a ``file_search`` tool it did not serve cannot be served at all."""
    fs = ctx.get(FILE_SEARCH)
    if fs is None and any(isinstance(t, dict) and t.get("type") == "file_search" for t in ctx.body.get("tools") or ()):
        raise UnsupportedCapability("file_search runs over the gateway's vector stores: it needs the 'rag' stage "
                                    "in the chain.", param="tools")
    return fs


def record(ctx: RequestContext, response: dict[str, Any]) -> None:
    """The final Response, for the endpoint to keep, and its usage for limits and logs."""
    ctx.set(RESPONSE, response)
    ctx.usage = Usage.from_json(response.get("usage")) or ctx.usage


def frame_events(ctx: RequestContext, events: list[dict[str, Any]], seq: int) -> tuple[bytes, int]:
    """``events`` numbered from ``seq`` and framed as SSE (the final Response recorded before its event
    goes out); the bytes and the next number."""
    frames: list[bytes] = []
    for event in events:
        kind = event["type"]
        if kind in TERMINAL:
            record(ctx, event["response"])
        event["sequence_number"] = seq
        seq += 1
        frames.append(b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(event) + b"\n\n")
    return b"".join(frames), seq
