"""Model steps as streams, for clients that asked for one.

Each step is requested as a stream. A step whose first delta carries text is the answer: it is
relayed to the client as it arrives, with the loop's trace on its last choice chunk and the usage
of every step in its usage chunk. A step whose first delta carries tool calls is read to the end
and assembled into the same message a non-stream step would have returned, and the loop goes on.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from gateway.kernel.context import Usage
from gateway.kernel.sse import Event, sse_events

__all__ = ["AnswerRelay", "Assembler", "Event", "kind_of", "sse_events"]


def kind_of(doc: dict[str, Any] | None) -> str | None:
    """``"answer"`` once text arrives, ``"tools"`` once a tool call does, else ``None`` (not yet known)."""
    choices = (doc or {}).get("choices") or []
    delta = choices[0].get("delta") or {} if choices and isinstance(choices[0], dict) else {}
    if delta.get("tool_calls"):
        return "tools"
    if delta.get("content"):
        return "answer"
    return None


@dataclass(slots=True)
class Assembler:
    """Rebuilds a non-stream ``chat.completion`` from stream chunks (first choice)."""

    head: dict[str, Any] = field(default_factory=dict)
    content: list[str] = field(default_factory=list)
    calls: dict[int, dict[str, Any]] = field(default_factory=dict)
    finish: str | None = None
    usage: dict[str, Any] | None = None

    def add(self, doc: dict[str, Any]) -> None:
        for key in ("id", "created", "model", "system_fingerprint"):
            if key in doc and key not in self.head:
                self.head[key] = doc[key]
        if isinstance(doc.get("usage"), dict):
            self.usage = doc["usage"]
        choices = doc.get("choices") or []
        if not choices:
            return
        choice = choices[0]
        self.finish = choice.get("finish_reason") or self.finish
        delta = choice.get("delta") or {}
        if delta.get("content"):
            self.content.append(delta["content"])
        for part in delta.get("tool_calls") or []:
            self._merge(part)

    def _merge(self, part: dict[str, Any]) -> None:
        call = self.calls.setdefault(int(part.get("index", 0)), {"type": "function", "function": {"arguments": ""}})
        if part.get("id"):
            call["id"] = part["id"]
        fn = part.get("function") or {}
        if fn.get("name"):
            call["function"]["name"] = fn["name"]
        call["function"]["arguments"] += fn.get("arguments") or ""

    def completion(self) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": "".join(self.content) or None}
        if self.calls:
            message["tool_calls"] = [self.calls[i] for i in sorted(self.calls)]
        choice = {"index": 0, "message": message, "finish_reason": self.finish or "stop"}
        return {**self.head, "object": "chat.completion", "choices": [choice], "usage": self.usage}


@dataclass(slots=True)
class AnswerRelay:
    """Relays the answering step: buffered events first, then the rest as they come."""

    buffered: list[Event]
    rest: AsyncIterator[Event]
    include_usage: bool
    prior: Usage  # usage of the steps before this one
    trace: Callable[[str | None], dict[str, Any]]  # finish reason → the ``llmops`` field
    done: Callable[[Usage], None]  # called with the total usage at the end

    async def stream(self) -> AsyncGenerator[bytes, None]:
        total = self.prior
        try:
            for event in self.buffered:
                out, total = self._rewrite(event, total)
                if out:
                    yield out
            async for event in self.rest:
                out, total = self._rewrite(event, total)
                if out:
                    yield out
        finally:
            self.done(total)

    def _rewrite(self, event: Event, total: Usage) -> tuple[bytes, Usage]:
        raw, doc = event
        if doc is None:
            return raw, total
        usage = Usage.from_json(doc.get("usage"))
        if usage is not None and not doc.get("choices"):
            total = Usage(total.prompt_tokens + usage.prompt_tokens, total.completion_tokens + usage.completion_tokens,
                          total.total_tokens + usage.total_tokens)
            if not self.include_usage:
                return b"", total
            doc["usage"] = {"prompt_tokens": total.prompt_tokens, "completion_tokens": total.completion_tokens,
                            "total_tokens": total.total_tokens}
            return b"data: " + orjson.dumps(doc) + b"\n\n", total
        choices = doc.get("choices") or []
        finish = choices[0].get("finish_reason") if choices and isinstance(choices[0], dict) else None
        if finish:
            doc["llmops"] = self.trace(finish)
            return b"data: " + orjson.dumps(doc) + b"\n\n", total
        return raw, total
