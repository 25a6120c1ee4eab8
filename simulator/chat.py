"""``POST /v1/chat/completions``: deterministic answers, tool calls, JSON modes, logprobs, SSE."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from starlette.responses import Response

from simulator.chat_request import ChatRequest, parse_chat
from simulator.conversation import reply_text
from simulator.jsonvalues import build_value
from simulator.pipeline import SimCall
from simulator.streaming import SSE_DONE, json_answer, sse_data, stream_answer
from simulator.text import answer_text, count_tokens, pieces, token_logprob, truncate
from simulator.tools import plan_tool_calls, quoted_strings
from simulator.wire import JSONObject, new_id, now

ARGUMENT_FRAGMENTS = 4


@dataclass(frozen=True, slots=True)
class ToolCallOut:
    id: str
    name: str
    arguments: str


@dataclass(frozen=True, slots=True)
class ChatChoice:
    index: int
    content: str | None
    tool_calls: tuple[ToolCallOut, ...]
    finish_reason: str
    completion_tokens: int
    stop_reason: str | None = None  # the stop string that ended the text (vLLM's choice field)


def usage(prompt_tokens: int, completion_tokens: int) -> JSONObject:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def _json_content(req: ChatRequest, index: int) -> str:
    fmt = req.response_format or {}
    prompt = req.conversation.last_user_text
    if fmt.get("type") == "json_schema":
        schema = fmt["json_schema"].get("schema")
        return json.dumps(build_value(schema if isinstance(schema, dict) else {}, quoted_strings(prompt)))
    return json.dumps({"answer": answer_text(prompt, seed=req.seed, index=index)})


def _content(req: ChatRequest, index: int) -> str:
    if req.response_format is not None and req.conversation.tool_result is None:
        return _json_content(req, index)
    return reply_text(req.conversation, seed=req.seed, index=index)


def build_choice(req: ChatRequest, index: int) -> ChatChoice:
    conv = req.conversation
    planned = plan_tool_calls(
        list(req.tools),
        req.tool_choice,
        conv.last_user_text,
        after_tool=conv.tool_result is not None,
        parallel=req.parallel_tool_calls,
    )
    if planned:
        calls = tuple(
            ToolCallOut(p.call_id("call_", index * 64 + k), p.name, p.arguments)
            for k, p in enumerate(planned)
        )
        return ChatChoice(index, None, calls, "tool_calls", sum(count_tokens(c.arguments) for c in calls))
    cut = truncate(_content(req, index), req.stops, req.max_tokens)
    return ChatChoice(index, cut.text, (), cut.finish_reason, count_tokens(cut.text), cut.stop_sequence)


def _wire_call(call: ToolCallOut) -> JSONObject:
    return {"id": call.id, "type": "function", "function": {"name": call.name, "arguments": call.arguments}}


def _logprobs(req: ChatRequest, content: str | None) -> JSONObject | None:
    if not req.logprobs or content is None:
        return None
    return {"content": [token_logprob(p, req.top_logprobs) for p in pieces(content)], "refusal": None}


def reasoning_of(req: ChatRequest) -> str:
    """What a reasoning model thought before answering (only when ``reasoning_effort`` is given)."""
    if not req.reasoning_effort:
        return ""
    return f"Thinking ({req.reasoning_effort}) about: {req.conversation.last_user_text[:80]}"


def _message(req: ChatRequest, choice: ChatChoice) -> JSONObject:
    message: JSONObject = {"role": "assistant", "content": choice.content, "refusal": None, "annotations": []}
    if reasoning_of(req):
        message["reasoning_content"] = reasoning_of(req)
    if choice.tool_calls:
        message["tool_calls"] = [_wire_call(c) for c in choice.tool_calls]
    return message


def completion_body(req: ChatRequest, choices: list[ChatChoice], fingerprint: str) -> JSONObject:
    return {
        "id": new_id("chatcmpl-"),
        "object": "chat.completion",
        "created": now(),
        "model": req.model,
        "choices": [
            {
                "index": c.index,
                "message": _message(req, c),
                "logprobs": _logprobs(req, c.content),
                "finish_reason": c.finish_reason,
                **_stop_reason(c),
            }
            for c in choices
        ],
        "usage": usage(req.conversation.prompt_tokens, sum(c.completion_tokens for c in choices)),
        "service_tier": "default",
        "system_fingerprint": fingerprint,
    }


def fragments(text: str, parts: int = ARGUMENT_FRAGMENTS) -> list[str]:
    size = max(1, -(-len(text) // parts))
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


def _stop_reason(choice: ChatChoice) -> JSONObject:
    """vLLM names the stop string that ended the text; clients translating to Anthropic's
    ``stop_sequence`` need it. Only present when one did."""
    return {"stop_reason": choice.stop_reason} if choice.stop_reason is not None else {}


def _choice_delta(index: int, delta: JSONObject, finish: str | None = None, lp: Any = None) -> JSONObject:
    return {"index": index, "delta": delta, "logprobs": lp, "finish_reason": finish}


def _text_deltas(req: ChatRequest, choice: ChatChoice) -> Iterator[JSONObject]:
    yield _choice_delta(choice.index, {"role": "assistant", "content": "", "refusal": None})
    for piece in pieces(reasoning_of(req)):
        yield _choice_delta(choice.index, {"reasoning_content": piece})
    for piece in pieces(choice.content or ""):
        yield _choice_delta(choice.index, {"content": piece}, lp=_logprobs(req, piece))
    yield _choice_delta(choice.index, {}, choice.finish_reason) | _stop_reason(choice)


def _tool_deltas(choice: ChatChoice) -> Iterator[JSONObject]:
    yield _choice_delta(choice.index, {"role": "assistant", "content": None, "refusal": None})
    for k, call in enumerate(choice.tool_calls):
        head = {
            "index": k,
            "id": call.id,
            "type": "function",
            "function": {"name": call.name, "arguments": ""},
        }
        yield _choice_delta(choice.index, {"tool_calls": [head]})
        for frag in fragments(call.arguments):
            yield _choice_delta(choice.index, {"tool_calls": [{"index": k, "function": {"arguments": frag}}]})
    yield _choice_delta(choice.index, {}, choice.finish_reason)


def stream_chunks(req: ChatRequest, choices: list[ChatChoice], fingerprint: str) -> Iterator[bytes]:
    meta: JSONObject = {"id": new_id("chatcmpl-"), "object": "chat.completion.chunk", "created": now()}
    meta |= {"model": req.model, "system_fingerprint": fingerprint, "service_tier": "default"}
    extra: JSONObject = {"usage": None} if req.include_usage else {}
    for choice in choices:
        deltas = _tool_deltas(choice) if choice.tool_calls else _text_deltas(req, choice)
        for delta in deltas:
            yield sse_data({**meta, "choices": [delta], **extra})
    if req.include_usage:
        total = sum(c.completion_tokens for c in choices)
        yield sse_data({**meta, "choices": [], "usage": usage(req.conversation.prompt_tokens, total)})
    yield SSE_DONE


async def create_chat_completion(call: SimCall) -> Response:
    req = parse_chat(call.body)
    choices = [build_choice(req, i) for i in range(req.n)]
    fingerprint = f"sim-{call.state.behaviour.name}"
    if req.stream:
        return stream_answer(stream_chunks(req, choices, fingerprint), call.overrides)
    return json_answer(completion_body(req, choices, fingerprint), call.overrides)
