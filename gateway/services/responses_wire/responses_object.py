"""The Response object: its envelope (what it echoes of the request), its usage, and a chat completion's
answer as Response output items (pure)."""

from __future__ import annotations

import time
from typing import Any

from gateway.kernel.responses import ResponseIdentity, new_id

TERMINAL = frozenset({"response.completed", "response.incomplete", "response.failed"})
_INCOMPLETE = {"length": "max_output_tokens", "content_filter": "content_filter"}
_ECHOED = ("user", "safety_identifier", "prompt_cache_key")


def envelope(body: dict[str, Any], response_id: str, created_at: int, model: str) -> dict[str, Any]:
    """An ``in_progress`` Response for ``body`` (the Responses request), with no output yet."""
    reasoning = body.get("reasoning") or {}
    out: dict[str, Any] = {
        "id": response_id, "object": "response", "created_at": created_at, "status": "in_progress",
        "background": body.get("background") is True, "error": None, "incomplete_details": None,
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"), "model": model, "output": [],
        "parallel_tool_calls": body.get("parallel_tool_calls") is not False,
        "previous_response_id": body.get("previous_response_id"),
        "reasoning": {"effort": reasoning.get("effort"), "summary": reasoning.get("summary")},
        "store": body.get("store") is not False, "temperature": _number(body, "temperature"),
        "text": {"format": (body.get("text") or {}).get("format") or {"type": "text"}},
        "tool_choice": body.get("tool_choice") or "auto", "tools": echo_tools(body.get("tools")),
        "top_p": _number(body, "top_p"), "truncation": body.get("truncation") or "disabled",
        "metadata": body.get("metadata") or {},
    }
    conversation = conversation_id(body.get("conversation"))
    if conversation is not None:
        out["conversation"] = {"id": conversation}
    out.update({key: body[key] for key in _ECHOED if isinstance(body.get(key), str)})
    return out


def _number(body: dict[str, Any], key: str) -> float:
    value = body.get(key)
    return float(value) if isinstance(value, int | float) else 1.0


def conversation_id(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and isinstance(value.get("id"), str):
        return str(value["id"])
    return None


def echo_tools(tools: Any) -> list[Any]:
    """The request's tools as the Response lists them (function tools always carry strict/parameters)."""
    return [{"strict": None, "parameters": None, **t} if isinstance(t, dict) and t.get("type") == "function" else t
            for t in tools or ()]


def finish(response: dict[str, Any], output: list[dict[str, Any]], finish_reason: str | None,
           usage: dict[str, Any] | None) -> dict[str, Any]:
    """``response`` completed, or incomplete when the model stopped at a limit or a filter."""
    reason = _INCOMPLETE.get(finish_reason or "")
    response["output"] = output
    response["status"] = "incomplete" if reason else "completed"
    response["incomplete_details"] = {"reason": reason} if reason else None
    if not reason:
        response["completed_at"] = int(time.time())
    if usage is not None:
        response["usage"] = usage
    return response


def failed(response: dict[str, Any], output: list[dict[str, Any]], message: str) -> dict[str, Any]:
    response.update(output=output, status="failed", error={"code": "server_error", "message": message})
    return response


def response_usage(usage: Any) -> dict[str, Any] | None:
    """A chat completion's usage in the Responses shape."""
    if not isinstance(usage, dict):
        return None
    prompt, completion = usage.get("prompt_tokens") or 0, usage.get("completion_tokens") or 0
    cached = (usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0
    reasoning = (usage.get("completion_tokens_details") or {}).get("reasoning_tokens") or 0
    return {"input_tokens": prompt, "input_tokens_details": {"cached_tokens": cached, "cache_write_tokens": 0},
            "output_tokens": completion, "output_tokens_details": {"reasoning_tokens": reasoning},
            "total_tokens": usage.get("total_tokens") or prompt + completion}


def text_part(text: str, logprobs: list[Any] | None = None) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": logprobs or []}


def reasoning_item(text: str, status: str = "completed") -> dict[str, Any]:
    """What a reasoning model thought (a chat backend's ``reasoning_content``), as a ``reasoning`` item."""
    return {"id": new_id("rs_"), "type": "reasoning", "status": status, "summary": [],
            "content": [{"type": "reasoning_text", "text": text}]}


def reasoning_text(message: dict[str, Any]) -> str | None:
    """vLLM's and DeepSeek's ``reasoning_content``, or ``reasoning`` as newer servers name it."""
    value = message.get("reasoning_content") or message.get("reasoning")
    return value if isinstance(value, str) and value else None


def token_logprobs(logprobs: Any) -> list[Any]:
    """A chat choice's ``logprobs.content`` (token, logprob, bytes, top_logprobs): the same shape here."""
    content = logprobs.get("content") if isinstance(logprobs, dict) else None
    return [lp for lp in content if isinstance(lp, dict)] if isinstance(content, list) else []


def message_item(parts: list[dict[str, Any]], status: str = "completed") -> dict[str, Any]:
    return {"id": new_id("msg_"), "type": "message", "status": status, "role": "assistant", "content": parts}


def call_item(call_id: str | None, name: str, arguments: str, status: str = "completed") -> dict[str, Any]:
    return {"id": new_id("fc_"), "type": "function_call", "status": status, "call_id": call_id or new_id("call_"),
            "name": name, "arguments": arguments}


def output_items(message: dict[str, Any], status: str, logprobs: Any = None) -> list[dict[str, Any]]:
    """A chat message as output items: its reasoning, its text (or refusal) as a message, then one item per
    tool call."""
    parts: list[dict[str, Any]] = []
    if isinstance(message.get("content"), str) and message["content"]:
        parts.append(text_part(message["content"], token_logprobs(logprobs)))
    if isinstance(message.get("refusal"), str) and message["refusal"]:
        parts.append({"type": "refusal", "refusal": message["refusal"]})
    thought = reasoning_text(message)
    items = [reasoning_item(thought, status)] if thought is not None else []
    items += [message_item(parts, status)] if parts else []
    for call in message.get("tool_calls") or ():
        fn = call.get("function") or {}
        items.append(call_item(call.get("id"), str(fn.get("name") or ""), str(fn.get("arguments") or ""), status))
    return items


def identity_of(identity: ResponseIdentity | None, created: Any = None) -> tuple[str, int]:
    """The Response's id and creation time: those it already has, else new ones. The time is the
    gateway's clock, never the backend's ``created`` (``created`` is accepted and ignored)."""
    if identity is not None:
        return identity.id, identity.created_at
    return new_id("resp_"), int(time.time())


def from_completion(body: dict[str, Any], completion: dict[str, Any],
                    identity: ResponseIdentity | None = None) -> dict[str, Any]:
    """The Response for a chat completion answering ``body`` (its first choice)."""
    choices = completion.get("choices") or [{}]
    choice = choices[0] if isinstance(choices[0], dict) else {}
    reason = choice.get("finish_reason")
    status = "incomplete" if reason in _INCOMPLETE else "completed"
    response = envelope(body, *identity_of(identity, completion.get("created")),
                        str(completion.get("model") or body.get("model") or ""))
    items = output_items(choice.get("message") or {}, status, choice.get("logprobs"))
    return finish(response, items, reason, response_usage(completion.get("usage")))
