"""Anthropic Messages SSE events → OpenAI ``chat.completion.chunk`` SSE, incrementally.

``tool_use`` blocks become ``tool_calls[i]`` (id and name in the first delta) and every
``input_json_delta.partial_json`` becomes a ``tool_calls[i].function.arguments`` delta, verbatim,
so the concatenated arguments equal the upstream's JSON text.
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from gateway.kernel.context import Usage
from gateway.kernel.sse import SseSplitter, data_of, json_object
from routers.backends.anthropic_shapes import FINISH_REASONS, matched_stop

DONE = b"data: [DONE]\n\n"


class StreamTranslator:
    """Feed raw upstream bytes; get back framed OpenAI SSE bytes (possibly empty)."""

    def __init__(self, include_usage: bool) -> None:
        self._split = SseSplitter()
        self._include_usage = include_usage
        self._id = ""
        self._model = ""
        self._created = int(time.time())
        self._tools: dict[int, int] = {}
        self.usage = Usage()
        self.done = False

    def feed(self, chunk: bytes) -> bytes:
        out = [self._translate(doc) for raw in self._split.feed(chunk)
               if (doc := json_object(data_of(raw))) is not None]
        return b"".join(out)

    def _translate(self, doc: dict[str, Any]) -> bytes:
        kind = doc.get("type")
        if kind == "message_start":
            return self._start(doc.get("message") or {})
        if kind == "content_block_start":
            return self._block_start(doc.get("index", 0), doc.get("content_block") or {})
        if kind == "content_block_delta":
            return self._delta(doc.get("index", 0), doc.get("delta") or {})
        if kind == "message_delta":
            return self._finish(doc)
        if kind == "message_stop":
            return self._stop()
        if kind == "error":
            self.done = True
            err = doc.get("error") or {}
            return (
                b"data: "
                + orjson.dumps(
                    {"error": {"message": err.get("message", ""), "type": err.get("type", "api_error")}}
                )
                + b"\n\n"
            )
        return b""

    def _chunk(self, delta: dict[str, Any], finish: str | None = None, extra: dict[str, Any] | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish, **(extra or {})}
        doc = {
            "id": self._id,
            "object": "chat.completion.chunk",
            "created": self._created,
            "model": self._model,
            "choices": [choice],
        }
        return b"data: " + orjson.dumps(doc) + b"\n\n"

    def _start(self, message: dict[str, Any]) -> bytes:
        self._id = "chatcmpl-" + str(message.get("id", ""))
        self._model = str(message.get("model", ""))
        self.usage.prompt_tokens = int((message.get("usage") or {}).get("input_tokens") or 0)
        return self._chunk({"role": "assistant", "content": ""})

    def _block_start(self, index: int, block: dict[str, Any]) -> bytes:
        if block.get("type") == "tool_use":
            position = self._tools[index] = len(self._tools)
            call = {
                "index": position,
                "id": block.get("id"),
                "type": "function",
                "function": {"name": block.get("name"), "arguments": ""},
            }
            return self._chunk({"tool_calls": [call]})
        text = block.get("text")
        return self._chunk({"content": text}) if text else b""

    def _delta(self, index: int, delta: dict[str, Any]) -> bytes:
        if delta.get("type") == "text_delta":
            return self._chunk({"content": delta.get("text", "")})
        if delta.get("type") == "input_json_delta" and delta.get("partial_json"):
            call = {"index": self._tools.get(index, 0), "function": {"arguments": delta["partial_json"]}}
            return self._chunk({"tool_calls": [call]})
        return b""

    def _finish(self, doc: dict[str, Any]) -> bytes:
        self.usage.completion_tokens = int((doc.get("usage") or {}).get("output_tokens") or 0)
        self.usage.total_tokens = self.usage.prompt_tokens + self.usage.completion_tokens
        delta = doc.get("delta") or {}
        return self._chunk({}, FINISH_REASONS.get(delta.get("stop_reason") or "", "stop"), matched_stop(delta))

    def _stop(self) -> bytes:
        self.done = True
        if not self._include_usage:
            return DONE
        u = self.usage
        doc = {
            "id": self._id,
            "object": "chat.completion.chunk",
            "created": self._created,
            "model": self._model,
            "choices": [],
            "usage": {
                "prompt_tokens": u.prompt_tokens,
                "completion_tokens": u.completion_tokens,
                "total_tokens": u.total_tokens,
            },
        }
        return b"data: " + orjson.dumps(doc) + b"\n\n" + DONE
