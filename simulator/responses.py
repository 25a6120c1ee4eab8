"""``POST /v1/responses``: the OpenAI Responses API (the Response object and its SSE event sequence).

Same decisions as chat: tool calls when tools are offered and the prompt names one (or a
``function_call_output`` is answered in text), JSON for ``text.format``, ``max_output_tokens`` cuts
the text and makes the response ``incomplete``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from starlette.responses import Response

from simulator.chat import fragments
from simulator.conversation import reply_text
from simulator.jsonvalues import build_value
from simulator.pipeline import SimCall
from simulator.responses_request import ResponsesRequest, parse_responses
from simulator.streaming import json_answer, sse_event, stream_answer
from simulator.text import answer_text, count_tokens, pieces, truncate
from simulator.tools import plan_tool_calls, quoted_strings
from simulator.wire import JSONObject, new_id, now


@dataclass(frozen=True, slots=True)
class Answer:
    items: list[JSONObject]  # completed output items
    status: str  # completed | incomplete
    output_tokens: int


def _json_text(req: ResponsesRequest) -> str:
    fmt = req.text_format or {}
    prompt = req.conversation.last_user_text
    if fmt.get("type") == "json_schema":
        schema = fmt.get("schema")
        return json.dumps(build_value(schema if isinstance(schema, dict) else {}, quoted_strings(prompt)))
    return json.dumps({"answer": answer_text(prompt)})


def _message(text: str, status: str = "completed") -> JSONObject:
    part = {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
    return {"id": new_id("msg_"), "type": "message", "status": status, "role": "assistant", "content": [part]}


def build_answer(req: ResponsesRequest) -> Answer:
    conv = req.conversation
    calls = plan_tool_calls(list(req.tools), req.tool_choice, conv.last_user_text,
                            after_tool=conv.tool_result is not None, parallel=req.parallel_tool_calls)
    if calls:
        items = [{"id": new_id("fc_"), "type": "function_call", "status": "completed",
                  "call_id": c.call_id("call_", k), "name": c.name, "arguments": c.arguments}
                 for k, c in enumerate(calls)]
        return Answer(items, "completed", sum(count_tokens(c.arguments) for c in calls))
    wants_json = req.text_format is not None and conv.tool_result is None
    cut = truncate(_json_text(req) if wants_json else reply_text(conv), (), req.max_output_tokens)
    status = "incomplete" if cut.finish_reason == "length" else "completed"
    return Answer([_message(cut.text, status)], status, count_tokens(cut.text))


def _usage(req: ResponsesRequest, output_tokens: int) -> JSONObject:
    prompt = req.conversation.prompt_tokens
    return {"input_tokens": prompt, "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
            "output_tokens": output_tokens, "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": prompt + output_tokens}


def _tools(body: dict[str, Any]) -> list[Any]:
    tools = body.get("tools") or []
    return [{"strict": None, "parameters": None, **t} if isinstance(t, dict) and t.get("type") == "function" else t
            for t in tools]


def response_body(req: ResponsesRequest, answer: Answer | None, rid: str, created: int) -> JSONObject:
    """The Response object; ``answer`` None is the in-progress object of the first stream events."""
    b = req.body
    status = answer.status if answer is not None else "in_progress"
    return {
        "id": rid, "object": "response", "created_at": created, "status": status,
        "completed_at": now() if status == "completed" else None, "error": None,
        "incomplete_details": {"reason": "max_output_tokens"} if status == "incomplete" else None,
        "instructions": b.get("instructions"), "max_output_tokens": req.max_output_tokens, "model": req.model,
        "output": answer.items if answer is not None else [], "parallel_tool_calls": req.parallel_tool_calls,
        "previous_response_id": b.get("previous_response_id"), "reasoning": {"effort": None, "summary": None},
        "store": b.get("store", True), "temperature": b.get("temperature", 1.0),
        "text": {"format": req.text_format or {"type": "text"}}, "tool_choice": b.get("tool_choice", "auto"),
        "tools": _tools(b), "top_p": b.get("top_p", 1.0), "truncation": b.get("truncation", "disabled"),
        "metadata": b.get("metadata") or {},
        **({"usage": _usage(req, answer.output_tokens)} if answer is not None else {}),
        **{k: b[k] for k in ("user", "safety_identifier", "prompt_cache_key") if isinstance(b.get(k), str)},
    }


def _item_events(index: int, item: JSONObject) -> Iterator[JSONObject]:
    base = {"output_index": index, "item_id": item["id"]}
    if item["type"] == "function_call":
        yield {"type": "response.output_item.added", "output_index": index, "item": {**item, "arguments": "",
                                                                                     "status": "in_progress"}}
        for frag in fragments(item["arguments"]):
            yield {"type": "response.function_call_arguments.delta", **base, "delta": frag}
        yield {"type": "response.function_call_arguments.done", **base, "name": item["name"],
               "arguments": item["arguments"]}
    else:
        part = item["content"][0]
        yield {"type": "response.output_item.added", "output_index": index,
               "item": {**item, "status": "in_progress", "content": []}}
        empty = {**part, "text": ""}
        yield {"type": "response.content_part.added", **base, "content_index": 0, "part": empty}
        for piece in pieces(part["text"]):
            yield {"type": "response.output_text.delta", **base, "content_index": 0, "delta": piece, "logprobs": []}
        yield {"type": "response.output_text.done", **base, "content_index": 0, "text": part["text"],
               "logprobs": []}
        yield {"type": "response.content_part.done", **base, "content_index": 0, "part": part}
    yield {"type": "response.output_item.done", "output_index": index, "item": item}


def stream_events(req: ResponsesRequest, answer: Answer) -> Iterator[bytes]:
    rid, created = new_id("resp_"), now()
    start = response_body(req, None, rid, created)
    events: list[JSONObject] = [{"type": "response.created", "response": start},
                                {"type": "response.in_progress", "response": start}]
    for index, item in enumerate(answer.items):
        events.extend(_item_events(index, item))
    final = "response.incomplete" if answer.status == "incomplete" else "response.completed"
    events.append({"type": final, "response": response_body(req, answer, rid, created)})
    for seq, event in enumerate(events):
        yield sse_event(event["type"], {**event, "sequence_number": seq})


async def create_response(call: SimCall) -> Response:
    req = parse_responses(call.body)
    answer = build_answer(req)
    if req.stream:
        return stream_answer(stream_events(req, answer), call.overrides)
    return json_answer(response_body(req, answer, new_id("resp_"), now()), call.overrides)
