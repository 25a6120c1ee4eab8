"""The chain's chat completion SSE → Anthropic's Messages event sequence, incrementally (pure).

Feed the relayed bytes (``chat.completion.chunk`` events, any chunking); get framed events back::

    message_start, ping
    content_block_start (text)      content_block_delta (text_delta)*        content_block_stop
    content_block_start (tool_use)  content_block_delta (input_json_delta)*  content_block_stop
    ...
    message_delta (stop_reason, stop_sequence, usage), message_stop

A block opens when its first delta arrives and closes when another opens or the answer ends; an
answer with no text and no tool call still gets one empty text block, as the non-stream body does.
``message_start`` carries the gateway's input estimate (chat streams report usage only at the end);
``message_delta`` carries the backend's counts, which replace it. An error chunk from the chain
(``data: {"error": ...}``), or a stream that ends before its ``finish_reason``, ends the events with
``event: error``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from gateway.http.messages.errors import error_event
from gateway.http.messages.reply import message_id, obj, stop_reason, tool_use_id
from gateway.kernel.sse import DONE, SseSplitter, data_of, json_object

Json = dict[str, Any]
_UNAVAILABLE = ("server_shutting_down", "upstream_unavailable", "overloaded")


def event(name: str, doc: Json) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps({"type": name, **doc}) + b"\n\n"


class MessageEvents:
    """One stream's translation. ``finished``: ``message_stop`` or ``error`` was written; nothing follows."""

    def __init__(self, model: str, stops: Sequence[str], input_estimate: int) -> None:
        self._model = model
        self._stops = stops
        self._estimate = input_estimate
        self._split = SseSplitter()
        self._started = False
        self._open: tuple[int, str] | None = None  # (block index, "text" | "tool_use")
        self._blocks = 0
        self._tools: dict[int, int] = {}  # the chunk's tool_calls[].index → block index
        self._finish: Any = None
        self._matched: Any = None
        self._usage: Json | None = None
        self.finished = False

    def feed(self, chunk: bytes) -> bytes:
        return b"".join(self._event(raw) for raw in self._split.feed(chunk))

    def end(self) -> bytes:
        """The stream is over: close the message, or say it broke off."""
        if self.finished:
            return b""
        rest = self._split.rest()
        if rest.strip():
            return self._event(rest) + self.end()
        if self._finish is None:
            return self.fail(502, "The backend ended the stream before its answer was complete.")
        return self._stop()

    def fail(self, status: int, message: str) -> bytes:
        if self.finished:
            return b""
        self.finished = True
        return error_event(status, message)

    def _event(self, raw: bytes) -> bytes:
        if self.finished:
            return b""
        payload = data_of(raw)
        if payload == DONE:
            return self.end()
        doc = json_object(payload)
        return self._chunk(doc) if doc is not None else b""

    def _chunk(self, doc: Json) -> bytes:
        if isinstance(doc.get("error"), dict):
            err = doc["error"]
            status = 503 if err.get("code") in _UNAVAILABLE else 502
            return self.fail(status, str(err.get("message") or "The backend broke off the stream."))
        out = b"" if self._started else self._start(doc)
        if isinstance(doc.get("usage"), dict):
            self._usage = doc["usage"]
        choices = doc.get("choices")
        if isinstance(choices, list) and choices:
            out += self._choice(obj(choices[0]))
        return out

    def _start(self, doc: Json) -> bytes:
        self._started = True
        message: Json = {"id": message_id(doc.get("id")), "type": "message", "role": "assistant", "model": self._model,
                   "content": [], "stop_reason": None, "stop_sequence": None,
                   "usage": {"input_tokens": self._estimate, "output_tokens": 0}}
        return event("message_start", {"message": message}) + event("ping", {})

    def _choice(self, choice: Json) -> bytes:
        delta = obj(choice.get("delta") or choice.get("message"))  # a whole completion reads as one chunk
        out = b""
        text = delta.get("content")
        if isinstance(text, str) and text:
            out += self._text(text)
        for position, call in enumerate(delta.get("tool_calls") or ()):
            if isinstance(call, dict):
                out += self._call(call, position)
        if choice.get("finish_reason") is not None:
            self._finish = choice["finish_reason"]
            self._matched = choice.get("stop_reason")
        return out

    def _text(self, text: str) -> bytes:
        out = b""
        if self._open is None or self._open[1] != "text":
            out += self._begin("text", {"type": "text", "text": ""})
        assert self._open is not None
        return out + event("content_block_delta", {"index": self._open[0],
                                                   "delta": {"type": "text_delta", "text": text}})

    def _call(self, call: Json, position: int) -> bytes:
        index = call.get("index")
        key = index if isinstance(index, int) else position
        fn = obj(call.get("function"))
        out = b""
        if key not in self._tools:
            block = {"type": "tool_use", "id": tool_use_id(call.get("id"), self._blocks),
                     "name": str(fn.get("name") or ""), "input": {}}
            out += self._begin("tool_use", block)
            self._tools[key] = self._blocks - 1
        arguments = fn.get("arguments")
        if isinstance(arguments, str) and arguments:
            delta = {"type": "input_json_delta", "partial_json": arguments}
            out += event("content_block_delta", {"index": self._tools[key], "delta": delta})
        return out

    def _begin(self, kind: str, block: Json) -> bytes:
        out = self._close()
        self._open = (self._blocks, kind)
        self._blocks += 1
        return out + event("content_block_start", {"index": self._open[0], "content_block": block})

    def _close(self) -> bytes:
        if self._open is None:
            return b""
        index, self._open = self._open[0], None
        return event("content_block_stop", {"index": index})

    def _stop(self) -> bytes:
        self.finished = True
        out = b"" if self._started else self._start({})
        if self._blocks == 0:
            out += self._begin("text", {"type": "text", "text": ""})
        out += self._close()
        reason, sequence = stop_reason(self._finish, self._matched, self._stops, bool(self._tools))
        used = self._usage or {}
        counts: Json = {"output_tokens": _count(used.get("completion_tokens"))}
        if isinstance(used.get("prompt_tokens"), int):
            counts["input_tokens"] = used["prompt_tokens"]
        delta = {"stop_reason": reason, "stop_sequence": sequence}
        return out + event("message_delta", {"delta": delta, "usage": counts}) + event("message_stop", {})


def _count(value: Any) -> int:
    return value if isinstance(value, int) and value >= 0 else 0
