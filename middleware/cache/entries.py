"""What is stored: the complete JSON answer. Streams are assembled into one on a clean finish,
and any entry can be replayed as an SSE stream."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

import orjson

from gateway.kernel.context import ReplyStream

_CACHEABLE_FINISH = frozenset({"stop", "length", "tool_calls", "function_call"})


def cacheable_json(route: str, body: bytes) -> bool:
    """Chat answers only when every choice finished, responses when completed; other routes (embeddings)
    when well-formed."""
    try:
        doc: Any = orjson.loads(body)
    except orjson.JSONDecodeError:
        return False
    if not isinstance(doc, dict) or doc.get("error") is not None:  # a Response carries "error": null
        return False
    if route == "responses":
        return doc.get("status") == "completed"
    if route != "chat":
        return True
    choices = doc.get("choices")
    return isinstance(choices, list) and bool(choices) and all(
        isinstance(c, dict) and c.get("finish_reason") in _CACHEABLE_FINISH for c in choices)


class StreamCapture:
    """Relays chunks unchanged; ``entry`` is the assembled answer once the stream ended cleanly
    (reached ``[DONE]``, no error event, not cut off by the client, under ``max_bytes``)."""

    def __init__(self, chunks: ReplyStream, max_bytes: int) -> None:
        self._chunks = chunks
        self._max = max_bytes
        self.entry: bytes | None = None

    async def stream(self) -> AsyncGenerator[bytes, None]:
        seen: list[bytes] = []
        size = 0
        try:
            async for chunk in self._chunks:
                size += len(chunk)
                if size <= self._max:
                    seen.append(chunk)
                yield chunk
        finally:
            await self._chunks.aclose()
        if size <= self._max:
            self.entry = assemble(b"".join(seen))


def _events(sse: bytes) -> tuple[list[dict[str, Any]], bool]:
    docs: list[dict[str, Any]] = []
    done = False
    for line in sse.split(b"\n"):
        if not line.startswith(b"data:"):
            continue
        payload = line[5:].strip()
        if payload == b"[DONE]":
            done = True
            continue
        try:
            doc = orjson.loads(payload)
        except orjson.JSONDecodeError:
            return [], False
        if not isinstance(doc, dict) or doc.get("error") is not None:  # a Response carries "error": null
            return [], False
        docs.append(doc)
    return docs, done


def assemble(sse: bytes) -> bytes | None:
    """A ``chat.completion`` from ``chat.completion.chunk`` events, or ``None`` if incomplete."""
    docs, done = _events(sse)
    if not done or not docs:
        return None
    choices: dict[int, dict[str, Any]] = {}
    usage = None
    for doc in docs:
        usage = doc.get("usage") or usage
        for c in doc.get("choices") or ():
            _merge(choices.setdefault(int(c.get("index", 0)), _empty_choice(int(c.get("index", 0)))), c)
    if not choices or any(c["finish_reason"] not in _CACHEABLE_FINISH for c in choices.values()):
        return None
    first = docs[0]
    out = {"id": first.get("id", ""), "object": "chat.completion", "created": first.get("created", 0),
           "model": first.get("model", ""), "system_fingerprint": first.get("system_fingerprint"),
           "choices": [_finish(choices[i]) for i in sorted(choices)], "usage": usage}
    return orjson.dumps(out)


def _empty_choice(index: int) -> dict[str, Any]:
    return {"index": index, "message": {"role": "assistant", "content": None}, "finish_reason": None,
            "logprobs": None, "_tools": {}}


def _merge(choice: dict[str, Any], chunk: dict[str, Any]) -> None:
    delta = chunk.get("delta") or {}
    message = choice["message"]
    if delta.get("role"):
        message["role"] = delta["role"]
    if delta.get("content"):
        message["content"] = (message["content"] or "") + delta["content"]
    if delta.get("refusal"):
        message["refusal"] = (message.get("refusal") or "") + delta["refusal"]
    for call in delta.get("tool_calls") or ():
        slot = choice["_tools"].setdefault(call.get("index", 0), {"id": "", "type": "function",
                                                                  "function": {"name": "", "arguments": ""}})
        slot["id"] = call.get("id") or slot["id"]
        fn = call.get("function") or {}
        slot["function"]["name"] += fn.get("name") or ""
        slot["function"]["arguments"] += fn.get("arguments") or ""
    if chunk.get("finish_reason"):
        choice["finish_reason"] = chunk["finish_reason"]


def _finish(choice: dict[str, Any]) -> dict[str, Any]:
    tools = choice.pop("_tools")
    if tools:
        choice["message"]["tool_calls"] = [tools[i] for i in sorted(tools)]
    return choice


def replay(entry: bytes, include_usage: bool) -> list[bytes]:
    """SSE events for a stored ``chat.completion``: per choice one delta and one finish chunk."""
    doc: Any = orjson.loads(entry)
    base = {"id": doc.get("id", ""), "object": "chat.completion.chunk", "created": doc.get("created", 0),
            "model": doc.get("model", ""), "system_fingerprint": doc.get("system_fingerprint")}
    events: list[bytes] = []
    for choice in doc.get("choices") or ():
        message = dict(choice.get("message") or {})
        delta = {k: v for k, v in message.items() if v is not None}
        if "tool_calls" in delta:
            delta["tool_calls"] = [{"index": i, **call} for i, call in enumerate(delta["tool_calls"])]
        first = {"index": choice.get("index", 0), "delta": delta, "finish_reason": None, "logprobs": None}
        last = {"index": choice.get("index", 0), "delta": {}, "finish_reason": choice.get("finish_reason"),
                "logprobs": None}
        events.append(_event({**base, "choices": [first]}))
        events.append(_event({**base, "choices": [last]}))
    if include_usage and doc.get("usage"):
        events.append(_event({**base, "choices": [], "usage": doc["usage"]}))
    events.append(b"data: [DONE]\n\n")
    return events


def _event(doc: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(doc) + b"\n\n"
