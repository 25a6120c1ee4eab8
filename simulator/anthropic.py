"""``POST /v1/messages``: the Anthropic Messages API (non-stream body and the SSE event sequence)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from starlette.responses import Response

from simulator.conversation import Conversation, Parts, read_parts, reply_text
from simulator.pipeline import SimCall
from simulator.streaming import json_answer, sse_event, stream_answer
from simulator.text import count_tokens, pieces, truncate
from simulator.tools import PlannedCall, ToolChoice, ToolSpec, plan_tool_calls
from simulator.validate import bad, opt_bool, opt_int, req_list, req_str, stop_list
from simulator.wire import JSONObject, new_id

_CHOICE_MODES = {"auto": "auto", "any": "required", "none": "none", "tool": "forced"}
_STOP_REASONS = {"stop": "end_turn", "length": "max_tokens"}


@dataclass(frozen=True, slots=True)
class MessagesRequest:
    model: str
    max_tokens: int
    conversation: Conversation
    tools: tuple[ToolSpec, ...]
    tool_choice: ToolChoice
    parallel: bool
    stops: tuple[str, ...]
    stream: bool


@dataclass(frozen=True, slots=True)
class Answer:
    blocks: list[JSONObject]
    stop_reason: str
    stop_sequence: str | None
    output_tokens: int


def _block_text(block: Any) -> str:
    return read_parts(block.get("content"), "tool_result.content").text


def _parts(content: Any, param: str) -> Parts:
    """Blocks: text and image count; a tool_result contributes its inner text; tool_use nothing."""
    if not isinstance(content, list):
        return read_parts(content, param)
    flat = [
        {"type": "text", "text": _block_text(b)}
        if isinstance(b, dict) and b.get("type") == "tool_result"
        else b
        for b in content
    ]
    return read_parts(flat, param)


def _tool_result(message: dict[str, Any]) -> str | None:
    content = message.get("content")
    if not isinstance(content, list):
        return None
    results = [b for b in content if isinstance(b, dict) and b.get("type") == "tool_result"]
    return " ".join(_block_text(b) for b in results).strip() if results else None


def _message(msg: Any, index: int) -> tuple[str, Parts]:
    if not isinstance(msg, dict) or msg.get("role") not in ("user", "assistant"):
        raise bad(f"messages.{index}.role", "each message needs role 'user' or 'assistant'")
    return msg["role"], _parts(msg.get("content"), f"messages.{index}.content")


def read_messages(system: Any, messages: list[Any]) -> Conversation:
    parsed = [_message(m, i) for i, m in enumerate(messages)]
    users = [parts for role, parts in parsed if role == "user"]
    last = users[-1] if users else parsed[-1][1]
    tokens = count_tokens(read_parts(system, "system").text) + sum(count_tokens(p.text) for _, p in parsed)
    return Conversation(last.text, last.images, last.audio, tokens, _tool_result(messages[-1]))


def _tools(body: dict[str, Any]) -> tuple[ToolSpec, ...]:
    raw = body.get("tools") or []
    if not isinstance(raw, list):
        raise bad("tools", "'tools' must be an array")
    return tuple(
        ToolSpec(t["name"], _schema(t.get("input_schema")))
        for t in raw
        if isinstance(t, dict) and isinstance(t.get("name"), str)
    )


def _schema(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _tool_choice(value: Any) -> tuple[ToolChoice, bool]:
    if value is None:
        return ToolChoice(), True
    if not isinstance(value, dict) or value.get("type") not in _CHOICE_MODES:
        raise bad("tool_choice", "'tool_choice.type' must be auto, any, tool or none")
    choice = ToolChoice(_CHOICE_MODES[value["type"]], value.get("name"))  # type: ignore[arg-type]
    return choice, not value.get("disable_parallel_tool_use", False)


def parse_messages(body: dict[str, Any]) -> MessagesRequest:
    choice, parallel = _tool_choice(body.get("tool_choice"))
    max_tokens = opt_int(body, "max_tokens", None, 1, 1 << 31)
    if max_tokens is None:
        raise bad("max_tokens", "max_tokens: Field required")
    return MessagesRequest(
        model=req_str(body, "model"),
        max_tokens=max_tokens,
        conversation=read_messages(body.get("system"), req_list(body, "messages")),
        tools=_tools(body),
        tool_choice=choice,
        parallel=parallel,
        stops=stop_list(body, "stop_sequences"),
        stream=opt_bool(body, "stream", False),
    )


def _tool_block(call: PlannedCall, index: int) -> JSONObject:
    return {
        "type": "tool_use",
        "id": call.call_id("toolu_", index),
        "name": call.name,
        "input": json.loads(call.arguments),
    }


def build_answer(req: MessagesRequest) -> Answer:
    conv = req.conversation
    after_tool = conv.tool_result is not None
    calls = plan_tool_calls(
        list(req.tools), req.tool_choice, conv.last_user_text, after_tool=after_tool, parallel=req.parallel
    )
    if calls:
        tokens = sum(count_tokens(c.arguments) for c in calls)
        return Answer([_tool_block(c, i) for i, c in enumerate(calls)], "tool_use", None, tokens)
    cut = truncate(reply_text(conv), req.stops, req.max_tokens)
    reason = "stop_sequence" if cut.stop_sequence else _STOP_REASONS[cut.finish_reason]
    return Answer([{"type": "text", "text": cut.text}], reason, cut.stop_sequence, count_tokens(cut.text))


def _usage(req: MessagesRequest, output_tokens: int) -> JSONObject:
    return {
        "input_tokens": req.conversation.prompt_tokens,
        "output_tokens": output_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
    }


def message_body(req: MessagesRequest, answer: Answer, content: list[JSONObject] | None = None) -> JSONObject:
    return {
        "id": new_id("msg_"),
        "type": "message",
        "role": "assistant",
        "model": req.model,
        "content": answer.blocks if content is None else content,
        "stop_reason": answer.stop_reason if content is None else None,
        "stop_sequence": answer.stop_sequence if content is None else None,
        "usage": _usage(req, answer.output_tokens if content is None else 0),
    }


def _block_events(index: int, block: JSONObject) -> Iterator[bytes]:
    if block["type"] == "text":
        yield sse_event(
            "content_block_start",
            {"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}},
        )
        deltas = [{"type": "text_delta", "text": p} for p in pieces(block["text"])]
    else:
        start = {**block, "input": {}}
        yield sse_event(
            "content_block_start", {"type": "content_block_start", "index": index, "content_block": start}
        )
        text = json.dumps(block["input"])
        size = max(1, -(-len(text) // 4))
        deltas = [
            {"type": "input_json_delta", "partial_json": text[i : i + size]}
            for i in range(0, len(text), size)
        ]
    if index == 0:
        yield sse_event("ping", {"type": "ping"})
    for delta in deltas:
        yield sse_event(
            "content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta}
        )
    yield sse_event("content_block_stop", {"type": "content_block_stop", "index": index})


def stream_events(req: MessagesRequest, answer: Answer) -> Iterator[bytes]:
    yield sse_event(
        "message_start", {"type": "message_start", "message": message_body(req, answer, content=[])}
    )
    for index, block in enumerate(answer.blocks):
        yield from _block_events(index, block)
    delta = {"stop_reason": answer.stop_reason, "stop_sequence": answer.stop_sequence}
    yield sse_event(
        "message_delta",
        {"type": "message_delta", "delta": delta, "usage": {"output_tokens": answer.output_tokens}},
    )
    yield sse_event("message_stop", {"type": "message_stop"})


async def create_message(call: SimCall) -> Response:
    req = parse_messages(call.body)
    answer = build_answer(req)
    if req.stream:
        return stream_answer(stream_events(req, answer), call.overrides)
    return json_answer(message_body(req, answer), call.overrides)
