"""Chat completion chunks in, Responses stream events out (as dicts; numbered and framed later).

Per stream: ``response.created`` and ``response.in_progress`` on the first chunk; a message item
(``output_item.added``, ``content_part.added``, ``output_text.delta``...) opened by the first text;
one ``function_call`` item per tool call (``function_call_arguments.delta``...); a ``reasoning`` item
for a reasoning model's ``reasoning_content`` (``reasoning_text.delta``...); all closed in order
(``...done``) when the answer ends, then ``response.completed`` or ``response.incomplete``. An error
event from the backend, or a stream that ends without a finish, is ``response.failed``.
"""

from __future__ import annotations

from typing import Any

from gateway.kernel.responses import ResponseIdentity
from gateway.services.responses_wire.responses_object import (
    call_item,
    envelope,
    failed,
    finish,
    identity_of,
    message_item,
    reasoning_item,
    reasoning_text,
    response_usage,
    text_part,
    token_logprobs,
)

Event = dict[str, Any]


class _Open:
    """An output item still being written: where it is, and its text or arguments so far."""

    __slots__ = ("index", "item", "logprobs", "pieces")

    def __init__(self, index: int, item: dict[str, Any]) -> None:
        self.index = index
        self.item = item
        self.pieces: list[str] = []
        self.logprobs: list[Any] = []


class ChatStreamTranslator:
    """Fed chat chunks (parsed); each call returns the events they make. ``identity``: the Response's
    id and creation time when it already has them (a background response)."""

    def __init__(self, body: dict[str, Any], identity: ResponseIdentity | None = None) -> None:
        self._body = body
        self._identity = identity
        self.response: dict[str, Any] | None = None
        self._output: list[dict[str, Any]] = []
        self._text: _Open | None = None
        self._thought: _Open | None = None
        self._calls: dict[int, _Open] = {}
        self._reason: str | None = None
        self._usage: dict[str, Any] | None = None
        self.done = False

    def feed(self, chunk: dict[str, Any]) -> list[Event]:
        events = self._start(chunk) if self.response is None else []
        if isinstance(chunk.get("error"), dict):
            return events + self.fail(str(chunk["error"].get("message") or "The backend failed."))
        if isinstance(chunk.get("usage"), dict):
            self._usage = response_usage(chunk["usage"])
        for choice in chunk.get("choices") or ():
            if isinstance(choice, dict) and choice.get("index", 0) == 0:
                self._choice(choice, events)
        return events

    def _start(self, chunk: dict[str, Any]) -> list[Event]:
        model = str(chunk.get("model") or self._body.get("model") or "")
        self.response = envelope(self._body, *identity_of(self._identity, chunk.get("created")), model)
        snapshot = {**self.response}
        return [{"type": "response.created", "response": snapshot},
                {"type": "response.in_progress", "response": snapshot}]

    def _choice(self, choice: dict[str, Any], events: list[Event]) -> None:
        delta = choice.get("delta") or {}
        thought = reasoning_text(delta)
        if thought is not None:
            self._add_thought(thought, events)
        content = delta.get("content")
        if isinstance(content, str) and content:
            self._add_text(content, token_logprobs(choice.get("logprobs")), events)
        for call in delta.get("tool_calls") or ():
            if isinstance(call, dict):
                self._add_call(call, events)
        if choice.get("finish_reason"):
            self._reason = choice["finish_reason"]

    def _add_thought(self, piece: str, events: list[Event]) -> None:
        thought = self._thought
        if thought is None:
            thought = self._thought = _Open(len(self._output), {**reasoning_item("", "in_progress"), "content": []})
            self._output.append(thought.item)
            events.append({"type": "response.output_item.added", "output_index": thought.index,
                           "item": {**thought.item}})
        thought.pieces.append(piece)
        events.append({"type": "response.reasoning_text.delta", "item_id": thought.item["id"],
                       "output_index": thought.index, "content_index": 0, "delta": piece})

    def _add_text(self, content: str, logprobs: list[Any], events: list[Event]) -> None:
        text = self._text
        if text is None:
            text = self._text = _Open(len(self._output), message_item([], "in_progress"))
            self._output.append(text.item)
            events.append({"type": "response.output_item.added", "output_index": text.index, "item": {**text.item}})
            events.append({"type": "response.content_part.added", "item_id": text.item["id"],
                           "output_index": text.index, "content_index": 0, "part": text_part("")})
        text.pieces.append(content)
        text.logprobs += logprobs
        events.append({"type": "response.output_text.delta", "item_id": text.item["id"], "output_index": text.index,
                       "content_index": 0, "delta": content, "logprobs": _event_logprobs(logprobs)})

    def _add_call(self, delta: dict[str, Any], events: list[Event]) -> None:
        key = delta.get("index", 0)
        fn = delta.get("function") or {}
        call = self._calls.get(key)
        if call is None:
            call = _Open(len(self._output), call_item(delta.get("id"), str(fn.get("name") or ""), "", "in_progress"))
            self._calls[key] = call
            self._output.append(call.item)
            events.append({"type": "response.output_item.added", "output_index": call.index, "item": {**call.item}})
        piece = fn.get("arguments")
        if isinstance(piece, str) and piece:
            call.pieces.append(piece)
            events.append({"type": "response.function_call_arguments.delta", "item_id": call.item["id"],
                           "output_index": call.index, "delta": piece})

    def finish(self) -> list[Event]:
        """Events that close the answer: every open item, then the terminal event."""
        if self.done:
            return []
        if self.response is None or self._reason is None:
            return self.fail("The backend ended the stream before the answer was complete.")
        status = "incomplete" if self._reason in ("length", "content_filter") else "completed"
        events = self._close(status)
        self.done = True
        final = finish(self.response, self._output, self._reason, self._usage)
        return [*events, {"type": f"response.{final['status']}", "response": final}]

    def fail(self, message: str) -> list[Event]:
        if self.done:
            return []
        events = self._start({}) if self.response is None else []
        events += self._close("incomplete")
        self.done = True
        assert self.response is not None
        return [*events, {"type": "response.failed", "response": failed(self.response, self._output, message)}]

    def _close(self, status: str) -> list[Event]:
        closing = [(self._text.index, self._text)] if self._text is not None else []
        closing += [(self._thought.index, self._thought)] if self._thought is not None else []
        closing += [(c.index, c) for c in self._calls.values()]
        events: list[Event] = []
        for _, open_item in sorted(closing, key=lambda pair: pair[0]):
            kind = open_item.item["type"]
            if kind == "message":
                events += _close_text(open_item, status)
            elif kind == "reasoning":
                events += _close_thought(open_item, status)
            else:
                events += _close_call(open_item, status)
        return events


def _close_text(text: _Open, status: str) -> list[Event]:
    full = "".join(text.pieces)
    part = text_part(full, text.logprobs)
    text.item.update(status=status, content=[part])
    base = {"item_id": text.item["id"], "output_index": text.index, "content_index": 0}
    return [{"type": "response.output_text.done", **base, "text": full, "logprobs": _event_logprobs(text.logprobs)},
            {"type": "response.content_part.done", **base, "part": part},
            {"type": "response.output_item.done", "output_index": text.index, "item": text.item}]


def _close_call(call: _Open, status: str) -> list[Event]:
    arguments = "".join(call.pieces)
    call.item.update(status=status, arguments=arguments)
    return [{"type": "response.function_call_arguments.done", "item_id": call.item["id"],
             "output_index": call.index, "name": call.item["name"], "arguments": arguments},
            {"type": "response.output_item.done", "output_index": call.index, "item": call.item}]


def _close_thought(thought: _Open, status: str) -> list[Event]:
    full = "".join(thought.pieces)
    thought.item.update(status=status, content=[{"type": "reasoning_text", "text": full}])
    return [{"type": "response.reasoning_text.done", "item_id": thought.item["id"], "output_index": thought.index,
             "content_index": 0, "text": full},
            {"type": "response.output_item.done", "output_index": thought.index, "item": thought.item}]


def _event_logprobs(logprobs: list[Any]) -> list[Any]:
    """Chat's token logprobs in a text event's shape (token, logprob, top_logprobs; no bytes)."""
    if not logprobs:
        return []
    return [{"token": lp.get("token"), "logprob": lp.get("logprob"),
             "top_logprobs": [{"token": t.get("token"), "logprob": t.get("logprob")}
                              for t in lp.get("top_logprobs") or () if isinstance(t, dict)]}
            for lp in logprobs]

