from __future__ import annotations

from typing import Any

import orjson

from gateway.kernel.config.sections.cache import CacheSettings
from gateway.kernel.context import RequestContext
from middleware.cache.entries import assemble, cacheable_json, replay
from middleware.cache.keys import exact_key, semantic_scope
from middleware.cache.rules import resolve


def sse(*docs: object, done: bool = True) -> bytes:
    out = b"".join(b"data: " + orjson.dumps(d) + b"\n\n" for d in docs)
    return out + (b"data: [DONE]\n\n" if done else b"")


def chunk(delta: dict[str, object], finish: str | None = None) -> dict[str, object]:
    return {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


def test_stream_assembles_and_replays_to_the_same_text() -> None:
    stream = sse(chunk({"role": "assistant", "content": "Hel"}), chunk({"content": "lo"}), chunk({}, "stop"))
    entry = assemble(stream)
    assert entry is not None
    doc = orjson.loads(entry)
    assert doc["object"] == "chat.completion" and doc["choices"][0]["message"]["content"] == "Hello"
    assert cacheable_json("chat", entry)
    replayed = assemble(b"".join(replay(entry, include_usage=False)))
    assert replayed is not None and orjson.loads(replayed)["choices"] == doc["choices"]


def test_tool_calls_are_assembled() -> None:
    stream = sse(chunk({"tool_calls": [{"index": 0, "id": "t1", "type": "function",
                                        "function": {"name": "get", "arguments": '{"a"'}}]}),
                 chunk({"tool_calls": [{"index": 0, "function": {"arguments": ": 1}"}}]}), chunk({}, "tool_calls"))
    entry = assemble(stream)
    assert entry is not None
    call = orjson.loads(entry)["choices"][0]["message"]["tool_calls"][0]
    assert call == {"id": "t1", "type": "function", "function": {"name": "get", "arguments": '{"a": 1}'}}


def test_incomplete_or_failed_streams_are_not_entries() -> None:
    assert assemble(sse(chunk({"content": "Hel"}), done=False)) is None
    assert assemble(sse(chunk({"content": "Hel"}))) is None  # no finish_reason
    assert assemble(sse(chunk({"content": "x"}, "stop"), {"error": {"message": "broke"}})) is None


def test_key_ignores_delivery_fields_but_not_answer_fields() -> None:
    body: dict[str, Any] = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "temperature": 0}
    key = exact_key("t", "chat", "m", "", body)
    assert key == exact_key("t", "chat", "m", "", {**body, "stream": True, "user": "u", "llmops": {}})
    assert key == exact_key("t", "chat", "m", "", dict(reversed(list(body.items()))))
    for changed in ({**body, "temperature": 0.5}, {**body, "tools": [{"type": "function"}]},
                    {**body, "response_format": {"type": "json_object"}},
                    {**body, "messages": [{"role": "system", "content": "x"}, *body["messages"]]}):
        assert exact_key("t", "chat", "m", "", changed) != key
    assert exact_key("u", "chat", "m", "", body) != key
    assert exact_key("t", "chat", "m2", "", body) != key
    assert exact_key("t", "chat", "m", "vs_a:2", body) != key


def test_semantic_scope_ignores_only_the_wording_of_the_last_user_turn() -> None:
    a = {"model": "m", "messages": [{"role": "user", "content": "Convert 10 USD to EUR"}]}
    b = {"model": "m", "messages": [{"role": "user", "content": "convert 10 USD to EUR please"}]}
    sig = ("#10",)
    assert semantic_scope("t", "chat", "m", "", a, sig) == semantic_scope("t", "chat", "m", "", b, sig)
    assert semantic_scope("t", "chat", "m", "", a, sig) != semantic_scope("t", "chat", "m", "", a, ("#11",))
    assert semantic_scope("t", "chat", "m", "", a, sig) != semantic_scope("u", "chat", "m", "", a, sig)


def test_responses_are_entries_only_when_completed() -> None:
    done: dict[str, Any] = {"id": "resp_1", "object": "response", "status": "completed", "error": None, "output": []}
    assert cacheable_json("responses", orjson.dumps(done))
    assert not cacheable_json("responses", orjson.dumps({**done, "status": "incomplete"}))
    assert not cacheable_json("responses", orjson.dumps({**done, "status": "failed", "error": {"code": "x"}}))


def test_the_cache_serves_responses_but_not_their_streams() -> None:
    settings = CacheSettings()
    body: dict[str, Any] = {"model": "m", "input": "x", "temperature": 0}
    assert resolve(settings, RequestContext("r", "responses", "m", body, {})) is not None
    assert resolve(settings, RequestContext("r", "responses", "m", {**body, "stream": True}, {}, True)) is None
