"""OpenAI chat completions ⇄ Anthropic Messages: request and non-stream response shapes."""

from __future__ import annotations

import time
from typing import Any

import orjson

FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
}
_SAMPLING = ("temperature", "top_p", "top_k", "stream")


def to_messages_request(body: dict[str, Any], model: str, default_max_tokens: int) -> dict[str, Any]:
    """The Messages request for an OpenAI chat request (system messages become ``system``)."""
    system: list[str] = []
    messages: list[dict[str, Any]] = []
    for message in body.get("messages") or ():
        role = message.get("role")
        if role in ("system", "developer"):
            system.append(text_of(message.get("content")))
        elif role in ("tool", "function"):
            _append(messages, "user", [_tool_result(message)])
        elif role == "assistant":
            _append(messages, "assistant", _assistant_blocks(message))
        else:
            _append(messages, "user", _user_blocks(message.get("content")))
    limit = body.get("max_completion_tokens") or body.get("max_tokens") or default_max_tokens
    out: dict[str, Any] = {"model": model, "max_tokens": limit, "messages": messages}
    if system:
        out["system"] = "\n\n".join(system)
    out.update({key: body[key] for key in _SAMPLING if body.get(key) is not None})
    stop = body.get("stop")
    if stop:
        out["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
    _add_tools(out, body)
    return out


def _append(messages: list[dict[str, Any]], role: str, blocks: list[dict[str, Any]]) -> None:
    """Anthropic wants user/assistant turns to alternate: merge consecutive same-role turns."""
    if messages and messages[-1]["role"] == role:
        messages[-1]["content"].extend(blocks)
    else:
        messages.append({"role": role, "content": blocks})


def text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
    return ""


def _user_blocks(content: Any) -> list[dict[str, Any]]:
    if not isinstance(content, list):
        return [{"type": "text", "text": text_of(content)}]
    blocks: list[dict[str, Any]] = []
    for part in content:
        if not isinstance(part, dict):
            continue
        if part.get("type") == "text":
            blocks.append({"type": "text", "text": part.get("text", "")})
        elif part.get("type") == "image_url":
            blocks.append(_image(part.get("image_url")))
    return blocks


def _image(ref: Any) -> dict[str, Any]:
    url = ref.get("url", "") if isinstance(ref, dict) else str(ref or "")
    if url.startswith("data:") and ";base64," in url:
        head, data = url[5:].split(";base64,", 1)
        return {"type": "image", "source": {"type": "base64", "media_type": head, "data": data}}
    return {"type": "image", "source": {"type": "url", "url": url}}


def _assistant_blocks(message: dict[str, Any]) -> list[dict[str, Any]]:
    text = text_of(message.get("content"))
    blocks: list[dict[str, Any]] = [{"type": "text", "text": text}] if text else []
    for call in message.get("tool_calls") or ():
        fn = call.get("function") or {}
        blocks.append(
            {
                "type": "tool_use",
                "id": call.get("id"),
                "name": fn.get("name"),
                "input": arguments_of(fn.get("arguments")),
            }
        )
    return blocks


def arguments_of(raw: Any) -> Any:
    """A tool call's JSON ``arguments`` text as the object a ``tool_use`` block's ``input`` holds."""
    if not isinstance(raw, str) or not raw:
        return {}
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {"value": value}


def _tool_result(message: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "tool_result",
        "tool_use_id": message.get("tool_call_id"),
        "content": text_of(message.get("content")),
    }


def _add_tools(out: dict[str, Any], body: dict[str, Any]) -> None:
    tools = [t["function"] for t in body.get("tools") or () if isinstance(t, dict) and t.get("function")]
    if tools:
        out["tools"] = [
            {
                "name": f["name"],
                "description": f.get("description") or "",
                "input_schema": f.get("parameters") or {"type": "object", "properties": {}},
            }
            for f in tools
        ]
    choice = _tool_choice(body.get("tool_choice"))
    if choice is not None and tools:
        if body.get("parallel_tool_calls") is False:
            choice["disable_parallel_tool_use"] = True
        out["tool_choice"] = choice


def _tool_choice(choice: Any) -> dict[str, Any] | None:
    if choice in ("auto", "none"):
        return {"type": choice}
    if choice == "required":
        return {"type": "any"}
    if isinstance(choice, dict) and isinstance(choice.get("function"), dict):
        return {"type": "tool", "name": choice["function"].get("name")}
    return None


def to_chat_completion(doc: dict[str, Any]) -> dict[str, Any]:
    """The OpenAI chat completion for a Messages response."""
    blocks = doc.get("content") or []
    text = "".join(b.get("text", "") for b in blocks if b.get("type") == "text")
    message: dict[str, Any] = {"role": "assistant", "content": text or None}
    calls = [tool_call(b) for b in blocks if b.get("type") == "tool_use"]
    if calls:
        message["tool_calls"] = calls
    choice: dict[str, Any] = {
        "index": 0,
        "message": message,
        "logprobs": None,
        "finish_reason": FINISH_REASONS.get(doc.get("stop_reason") or "", "stop"),
        **matched_stop(doc),
    }
    return {
        "id": "chatcmpl-" + str(doc.get("id", "")),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": doc.get("model", ""),
        "choices": [choice],
        "usage": usage(doc.get("usage")),
    }


def matched_stop(doc: dict[str, Any]) -> dict[str, Any]:
    """The stop sequence that ended the text, as vLLM names it on a choice (``stop_reason``), if one did."""
    sequence = doc.get("stop_sequence")
    if doc.get("stop_reason") == "stop_sequence" and isinstance(sequence, str):
        return {"stop_reason": sequence}
    return {}


def tool_call(block: dict[str, Any]) -> dict[str, Any]:
    arguments = orjson.dumps(block.get("input") or {}).decode()
    return {
        "id": block.get("id"),
        "type": "function",
        "function": {"name": block.get("name"), "arguments": arguments},
    }


def usage(raw: Any) -> dict[str, int]:
    raw = raw if isinstance(raw, dict) else {}
    prompt = int(raw.get("input_tokens") or 0)
    completion = int(raw.get("output_tokens") or 0)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def openai_error(body: bytes) -> bytes:
    """Anthropic's ``{"type": "error", "error": {type, message}}`` in OpenAI's envelope."""
    try:
        doc: Any = orjson.loads(body)
        err = doc["error"]
        message, kind = str(err.get("message", "")), str(err.get("type", "invalid_request_error"))
    except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError):
        message, kind = "The backend rejected the request.", "invalid_request_error"
    return orjson.dumps({"error": {"message": message, "type": kind, "param": None, "code": None}})
