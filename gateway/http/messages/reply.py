"""A chat completion → an Anthropic ``message`` (pure functions), and the pieces the stream shares.

The first choice's text becomes a ``text`` block (always present unless the answer is only tool calls),
each tool call a ``tool_use`` block (``input``: the arguments parsed; text that is not a JSON object is
wrapped as ``{"value": ...}``, unparseable text is ``{}``). ``finish_reason`` maps to ``stop_reason``:

==================  ================================================================
finish_reason       stop_reason
==================  ================================================================
stop                ``end_turn``, or ``stop_sequence`` when the backend names the stop
                    string that ended the text (vLLM's ``stop_reason`` on the choice)
length              ``max_tokens``
tool_calls          ``tool_use`` (also when a backend says ``stop`` with tool calls)
content_filter      ``refusal``
==================  ================================================================

``usage``: ``prompt_tokens`` → ``input_tokens``, ``completion_tokens`` → ``output_tokens``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from routers.backends.anthropic_shapes import arguments_of, text_of

Json = dict[str, Any]
STOP_REASONS = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use", "function_call": "tool_use",
                "content_filter": "refusal"}


def to_message(completion: Json, model: str, stops: Sequence[str]) -> Json:
    """The Messages response for a chat completion; ``model`` is the name the client asked for."""
    choices = completion.get("choices")
    choice = obj(choices[0]) if isinstance(choices, list) and choices else {}
    message = obj(choice.get("message"))
    calls = [c for c in message.get("tool_calls") or () if isinstance(c, dict)]
    text = text_of(message.get("content"))
    content: list[Json] = [{"type": "text", "text": text}] if text or not calls else []
    content += [tool_use(call, i) for i, call in enumerate(calls)]
    reason, sequence = stop_reason(choice.get("finish_reason"), choice.get("stop_reason"), stops, bool(calls))
    return {
        "id": message_id(completion.get("id")),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": reason,
        "stop_sequence": sequence,
        "usage": usage(completion.get("usage")),
    }


def tool_use(call: Json, index: int) -> Json:
    fn = obj(call.get("function"))
    return {"type": "tool_use", "id": tool_use_id(call.get("id"), index), "name": str(fn.get("name") or ""),
            "input": arguments_of(fn.get("arguments"))}


def tool_use_id(raw: Any, index: int) -> str:
    return raw if isinstance(raw, str) and raw else f"toolu_{os.urandom(8).hex()}{index}"


def stop_reason(finish: Any, matched: Any, stops: Sequence[str], has_calls: bool) -> tuple[str, str | None]:
    """(``stop_reason``, ``stop_sequence``) for a choice's ``finish_reason`` and the matched stop, if named."""
    if has_calls and finish in (None, "stop", "tool_calls", "function_call"):
        return "tool_use", None
    if finish in (None, "stop") and isinstance(matched, str) and matched in stops:
        return "stop_sequence", matched
    return STOP_REASONS.get(finish if isinstance(finish, str) else "stop", "end_turn"), None


def message_id(raw: Any) -> str:
    """``msg_`` and the completion's own id (without ``chatcmpl-``; an Anthropic backend's ``msg_`` id as it
    was), or a fresh one."""
    own = raw.removeprefix("chatcmpl-") if isinstance(raw, str) else ""
    if not own:
        return "msg_" + os.urandom(12).hex()
    return own if own.startswith("msg_") else "msg_" + own


def usage(raw: Any) -> Json:
    raw = raw if isinstance(raw, dict) else {}
    return {"input_tokens": _count(raw.get("prompt_tokens")), "output_tokens": _count(raw.get("completion_tokens"))}


def obj(value: Any) -> Json:
    return value if isinstance(value, dict) else {}


def _count(value: Any) -> int:
    return value if isinstance(value, int) and value >= 0 else 0
