"""Responses over a chat backend and through a native one (``routers/backends/responses.py``): a scripted
``send`` stands in for the backend's HTTP; every body and event is held to the published description."""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator
from typing import Any

import orjson
import pytest

from gateway.kernel.context import Reply, RequestContext
from gateway.kernel.errors import UnsupportedCapability
from gateway.kernel.responses import FILE_SEARCH, IDENTITY, RESPONSE, FileSearch, ResponseIdentity
from routers.backends.responses import native, over_chat
from tests.support.openapi import validate
from tests.support.responses_events import sse_events, types_of, validate_events

pytestmark = pytest.mark.asyncio

TOOL: dict[str, Any] = {"type": "function", "name": "get_weather",
                        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}
SEARCH = FileSearch(("tides",), ({"file_id": "file-a", "filename": "tides.md", "text": "Tides rise.",
                                  "score": 0.9, "attributes": None},), include_results=True)


def completion(message: dict[str, Any], finish: str = "stop") -> dict[str, Any]:
    return {"id": "chatcmpl-1", "object": "chat.completion", "created": 1700000000, "model": "up-model",
            "choices": [{"index": 0, "message": {"role": "assistant", **message}, "finish_reason": finish}],
            "usage": {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10,
                      "prompt_tokens_details": {"cached_tokens": 2},
                      "completion_tokens_details": {"reasoning_tokens": 1}}}


def chunk(delta: dict[str, Any] | None = None, finish: str | None = None, usage: Any = None) -> bytes:
    choices = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}]
    doc = {"id": "c", "object": "chat.completion.chunk", "created": 1700000000, "model": "up-model",
           "choices": choices, "usage": usage}
    return b"data: " + orjson.dumps(doc) + b"\n\n"


USAGE = {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}
TEXT_STREAM = [chunk({"role": "assistant", "content": ""}), chunk({"content": "Hello"}), chunk({"content": " there"}),
               chunk({}, "stop"), chunk(None, usage=USAGE), b"data: [DONE]\n\n"]


class Scripted:
    """A backend's chat (or native) path: records what it was sent, answers what it was given."""

    def __init__(self, body: dict[str, Any] | None = None, stream: list[bytes] | None = None,
                 status: int = 200) -> None:
        self.body, self.stream, self.status = body, stream, status
        self.sent: list[RequestContext] = []
        self.closed = False

    async def __call__(self, ctx: RequestContext, upstream_model: str) -> Reply:
        self.sent.append(ctx)
        if self.stream is not None:
            return Reply(stream=self._chunks(), media_type="text/event-stream")
        return Reply(status=self.status, body=orjson.dumps(self.body))

    async def _chunks(self) -> AsyncGenerator[bytes, None]:
        try:
            for piece in self.stream or ():
                yield piece
        finally:
            self.closed = True


def context(body: dict[str, Any], stream: bool = False) -> RequestContext:
    return RequestContext("req-1", "responses", "m", {"model": "m", **body}, {}, stream)


async def read(reply: Reply) -> list[dict[str, Any]]:
    assert reply.stream is not None
    text = b"".join([piece async for piece in reply.stream]).decode()
    events = sse_events(text)
    validate_events(events)
    return events


async def test_a_chat_completion_is_a_response() -> None:
    send = Scripted(completion({"content": "Hi!"}))
    ctx = context({"input": "Hello", "instructions": "Be brief", "metadata": {"k": "v"}, "tools": [TOOL]})
    reply = await over_chat(send, ctx, "up-model")
    body = orjson.loads(reply.body)
    validate(body, "Response")
    assert send.sent[0].route == "chat" and send.sent[0].body["messages"][0]["content"] == "Be brief"
    assert (body["status"], body["model"], body["instructions"], body["metadata"]) == (
        "completed", "up-model", "Be brief", {"k": "v"})
    assert body["output"][0]["content"][0]["text"] == "Hi!"
    assert body["usage"] == {"input_tokens": 7, "input_tokens_details": {"cached_tokens": 2, "cache_write_tokens": 0},
                             "output_tokens": 3, "output_tokens_details": {"reasoning_tokens": 1},
                             "total_tokens": 10}
    assert ctx.get(RESPONSE) == body and ctx.usage is not None and ctx.usage.total_tokens == 10


async def test_tool_calls_are_function_call_items() -> None:
    calls = [{"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'}},
             {"id": "call_2", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}]
    body = orjson.loads((await over_chat(Scripted(completion({"content": None, "tool_calls": calls}, "tool_calls")),
                                         context({"input": "x", "tools": [TOOL]}), "m")).body)
    validate(body, "Response")
    assert [(i["type"], i["call_id"], i["arguments"]) for i in body["output"]] == [
        ("function_call", "call_1", '{"city":"Oslo"}'), ("function_call", "call_2", "{}")]


async def test_length_is_incomplete() -> None:
    body = orjson.loads((await over_chat(Scripted(completion({"content": "cut"}, "length")),
                                         context({"input": "x", "max_output_tokens": 16}), "m")).body)
    validate(body, "Response")
    assert body["status"] == "incomplete" and body["incomplete_details"] == {"reason": "max_output_tokens"}


async def test_errors_pass_through_unchanged() -> None:
    envelope = {"error": {"message": "bad", "type": "invalid_request_error", "param": "x", "code": None}}
    reply = await over_chat(Scripted(envelope, status=400), context({"input": "x"}), "m")
    assert reply.status == 400 and orjson.loads(reply.body) == envelope


async def test_text_stream_event_sequence() -> None:
    send = Scripted(stream=TEXT_STREAM)
    ctx = context({"input": "x"}, stream=True)
    events = await read(await over_chat(send, ctx, "m"))
    assert types_of(events) == [
        "response.created", "response.in_progress", "response.output_item.added", "response.content_part.added",
        "response.output_text.delta", "response.output_text.delta", "response.output_text.done",
        "response.content_part.done", "response.output_item.done", "response.completed"]
    assert send.sent[0].body["stream_options"] == {"include_usage": True}
    final = events[-1]["response"]
    assert final["output"][0]["content"][0]["text"] == "Hello there" == events[6]["text"]
    assert final["usage"]["total_tokens"] == 7 and ctx.usage is not None and ctx.usage.total_tokens == 7
    assert ctx.get(RESPONSE) == final and send.closed


async def test_a_stream_that_arrives_whole_is_one_write() -> None:
    """A short answer comes from the backend in one piece; its events, closing ones included, go out in one
    write (a write per batch is a syscall and a send through the ASGI stack)."""
    whole = Scripted(stream=[b"".join(TEXT_STREAM)])
    reply = await over_chat(whole, context({"input": "x"}, stream=True), "m")
    assert reply.stream is not None
    writes = [piece async for piece in reply.stream]
    assert len(writes) == 1
    events = sse_events(writes[0].decode())
    validate_events(events)
    assert types_of(events)[-1] == "response.completed" and whole.closed


async def test_tool_call_stream_event_sequence() -> None:
    head = {"index": 0, "id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": ""}}
    stream = [chunk({"role": "assistant", "content": None}), chunk({"tool_calls": [head]}),
              chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"city":'}}]}),
              chunk({"tool_calls": [{"index": 0, "function": {"arguments": '"Oslo"}'}}]}),
              chunk({}, "tool_calls"), chunk(None, usage=USAGE), b"data: [DONE]\n\n"]
    events = await read(await over_chat(Scripted(stream=stream), context({"input": "x", "tools": [TOOL]}, True), "m"))
    assert types_of(events) == [
        "response.created", "response.in_progress", "response.output_item.added",
        "response.function_call_arguments.delta", "response.function_call_arguments.delta",
        "response.function_call_arguments.done", "response.output_item.done", "response.completed"]
    assert events[5]["arguments"] == '{"city":"Oslo"}' and events[5]["name"] == "get_weather"
    assert events[-1]["response"]["output"][0]["call_id"] == "call_1"


async def test_a_broken_stream_is_failed() -> None:
    broken = [chunk({"content": "Hel"}), b'data: {"error": {"message": "Backend broke off", "type": "api_error", '
              b'"param": null, "code": "upstream_error"}}\n\n']
    events = await read(await over_chat(Scripted(stream=broken), context({"input": "x"}, True), "m"))
    assert events[-1]["type"] == "response.failed"
    assert events[-1]["response"]["error"] == {"code": "server_error", "message": "Backend broke off"}
    cut = await read(await over_chat(Scripted(stream=[chunk({"content": "Hel"})]), context({"input": "x"}, True), "m"))
    assert cut[-1]["type"] == "response.failed" and "before the answer was complete" in cut[-1]["response"]["error"][
        "message"]


async def test_length_stream_is_incomplete() -> None:
    stream = [chunk({"content": "cut"}), chunk({}, "length"), b"data: [DONE]\n\n"]
    events = await read(await over_chat(Scripted(stream=stream), context({"input": "x"}, True), "m"))
    assert events[-1]["type"] == "response.incomplete"
    assert events[-1]["response"]["incomplete_details"] == {"reason": "max_output_tokens"}


async def test_file_search_item_and_citations() -> None:
    ctx = context({"input": "tides?", "tools": [{"type": "file_search", "vector_store_ids": ["vs_1"]}]})
    ctx.set(FILE_SEARCH, SEARCH)
    body = orjson.loads((await over_chat(Scripted(completion({"content": "They rise [file-a#0]. Yes."})), ctx,
                                         "m")).body)
    validate(body, "Response")
    search, message = body["output"]
    assert (search["type"], search["queries"], search["results"][0]["file_id"]) == (
        "file_search_call", ["tides"], "file-a")
    assert message["content"][0]["annotations"] == [
        {"type": "file_citation", "file_id": "file-a", "filename": "tides.md", "index": 20}]


async def test_file_search_in_a_stream_shifts_the_output() -> None:
    ctx = context({"input": "tides?"}, stream=True)
    ctx.set(FILE_SEARCH, FileSearch(("tides",), SEARCH.results))
    events = await read(await over_chat(Scripted(stream=TEXT_STREAM), ctx, "m"))
    kinds = types_of(events)
    assert kinds[2:7] == ["response.output_item.added", "response.file_search_call.in_progress",
                          "response.file_search_call.searching", "response.file_search_call.completed",
                          "response.output_item.done"]
    assert {e["output_index"] for e in events if e["type"].startswith("response.output_text")} == {1}
    note = next(e for e in events if e["type"] == "response.output_text.annotation.added")
    assert note["annotation"]["index"] == len("Hello there")  # not named by the text: cited at its end
    final = events[-1]["response"]
    assert [i["type"] for i in final["output"]] == ["file_search_call", "message"]
    assert final["output"][0]["results"] is None  # not asked for with include


async def test_file_search_not_served_is_a_400() -> None:
    with pytest.raises(UnsupportedCapability) as err:
        await over_chat(Scripted(completion({"content": "x"})),
                        context({"input": "x", "tools": [{"type": "file_search", "vector_store_ids": []}]}), "m")
    assert err.value.param == "tools"


async def test_native_body_is_patched_and_recorded() -> None:
    upstream = {"id": "resp_up", "object": "response", "created_at": 1, "status": "completed", "model": "m",
                "output": [], "previous_response_id": None, "store": False, "tools": [], "tool_choice": "auto",
                "usage": {"input_tokens": 3, "output_tokens": 4, "total_tokens": 7}}
    send = Scripted(upstream)
    ctx = context({"input": [{"role": "user", "content": "x"}], "previous_response_id": "resp_0"})
    body = orjson.loads((await native(send, ctx, "m")).body)
    assert send.sent[0].route == "responses" and "previous_response_id" not in send.sent[0].body
    assert body["previous_response_id"] == "resp_0" and body["store"] is True
    assert ctx.usage is not None and ctx.usage.total_tokens == 7 and ctx.get(RESPONSE) == body


async def test_native_stream_is_renumbered_and_patched() -> None:
    started: dict[str, Any] = {"id": "resp_up", "object": "response", "created_at": 1, "status": "in_progress",
                               "model": "m", "output": [], "store": False}
    created = {"type": "response.created", "sequence_number": 40, "response": started}
    done = {"type": "response.completed", "sequence_number": 41,
            "response": {**started, "status": "completed",
                         "usage": {"input_tokens": 1, "output_tokens": 1, "total_tokens": 2}}}
    stream = [b"event: x\ndata: " + json.dumps(e).encode() + b"\n\n" for e in (created, done)]
    ctx = context({"input": "x", "store": True}, stream=True)
    reply = await native(Scripted(stream=stream), ctx, "m")
    assert reply.stream is not None
    events = sse_events(b"".join([p async for p in reply.stream]).decode())
    assert [e["sequence_number"] for e in events] == [0, 1]
    assert all(e["response"]["store"] is True for e in events)
    assert ctx.usage is not None and ctx.usage.total_tokens == 2


@pytest.mark.parametrize("stream", [False, True])
async def test_a_response_with_an_identity_keeps_it_on_every_path(stream: bool) -> None:
    """A background response (queued earlier with its id): no new id, its creation time, background true."""
    queued = ResponseIdentity("resp_queued", 1234)
    upstream: dict[str, Any] = {"id": "resp_up", "object": "response", "created_at": 1, "status": "completed",
                                "model": "m", "output": [], "background": False}
    native_stream = [b"data: " + json.dumps({"type": "response.completed", "response": upstream}).encode() + b"\n\n"]
    paths = [(over_chat, Scripted(completion({"content": "x"}), stream=TEXT_STREAM if stream else None)),
             (native, Scripted(upstream, stream=native_stream if stream else None))]
    for adapter, send in paths:
        ctx = context({"input": "x", "background": True}, stream)
        ctx.set(IDENTITY, queued)
        reply = await adapter(send, ctx, "m")
        responses = [e["response"] for e in sse_events(b"".join([p async for p in reply.stream]).decode())
                     if "response" in e] if reply.stream is not None else [orjson.loads(reply.body)]
        assert {(r["id"], r["created_at"], r["background"]) for r in responses} == {("resp_queued", 1234, True)}
        final = ctx.get(RESPONSE)
        assert final is not None and final["id"] == "resp_queued"
